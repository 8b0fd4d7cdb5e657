package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/mcpserver"
	"github.com/orderflow/orderflow/service"
)

func init() {
	register(command{name: "mcp", summary: "serve the order-flow tools to LLM agents over MCP (stdio)", run: runMCP})
}

// runMCP serves the MCP tools on stdin/stdout. With --api it reads a
// running service over HTTP; otherwise it runs its own service (the run
// flags apply, without an HTTP listener). Logs go to stderr: stdout is the
// protocol.
func runMCP(ctx context.Context, env *environ, args []string) error {
	fs := newFlagSet(env, "mcp", "[--api URL [--token T]] | [--symbols BTCUSDT,...] [--market spot|usdm] [--ws-url URL --rest-url URL]")
	apiURL := fs.String("api", "", "read a running service's HTTP API at this URL instead of running a service")
	var sf serviceFlags
	sf.register(fs, true)
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	log, err := lf.logger(env.stderr)
	if err != nil {
		return err
	}
	if *apiURL != "" {
		c, err := client.New(*apiURL, client.Options{Token: sf.token})
		if err != nil {
			return fmt.Errorf("%w: --api: %v", errUsage, err)
		}
		return serveMCP(ctx, mcpserver.New(c, log))
	}
	sf.listen = "off" // the tools read the service in-process
	cfg, err := sf.config(log)
	if err != nil {
		return err
	}
	svc, err := service.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	a := api.New(svc, api.Options{Logger: log})
	defer a.Close()
	if err := svc.Start(ctx); err != nil {
		return err
	}
	serveErr := serveMCP(ctx, mcpserver.New(a, log))
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.StopTimeout+time.Second)
	defer cancel()
	return errors.Join(serveErr, svc.Stop(stopCtx))
}

// serveMCP runs the server over stdio until the client disconnects or ctx
// ends (both normal ends).
func serveMCP(ctx context.Context, s *mcp.Server) error {
	err := s.Run(ctx, &mcp.StdioTransport{})
	if ctx.Err() != nil || errors.Is(err, mcp.ErrConnectionClosed) {
		return nil
	}
	return err
}
