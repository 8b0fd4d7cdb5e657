package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/orderflow/orderflow/bus"
)

// busSecFlags are the bus's TLS and authentication flags. Secrets come
// from a flag, its ORDERFLOW_* variable or a file, so they need not show
// in the process list.
type busSecFlags struct {
	token, tokenFile       string
	user                   string
	password, passwordFile string
	creds                  string
	tlsCA, tlsCert, tlsKey string
	srvCert, srvKey, srvCA string
	insecure               bool

	// Resolved by check.
	auth bus.Auth
}

func (f *busSecFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.token, "bus-token", "", "bus token: the one the embedded server requires, or the one presented to --bus nats://... (prefer ORDERFLOW_BUS_TOKEN or --bus-token-file: a flag shows in the process list)")
	fs.StringVar(&f.tokenFile, "bus-token-file", "", "file holding the bus token (surrounding white space ignored)")
	fs.StringVar(&f.user, "bus-user", "", "bus user name (with a password): the one the embedded server requires, or the one presented to --bus nats://...")
	fs.StringVar(&f.password, "bus-password", "", "bus password of --bus-user (prefer ORDERFLOW_BUS_PASSWORD or --bus-password-file)")
	fs.StringVar(&f.passwordFile, "bus-password-file", "", "file holding the bus password (surrounding white space ignored)")
	fs.StringVar(&f.creds, "bus-creds", "", "NATS credentials file (user JWT and NKey seed) presented to --bus nats://...")
	fs.StringVar(&f.tlsCA, "bus-tls-ca", "", "CA file verifying the NATS servers of --bus nats://... or tls://... (default: the system's roots when TLS is on)")
	fs.StringVar(&f.tlsCert, "bus-tls-cert", "", "client certificate file for mutual TLS with --bus nats://... (with --bus-tls-key)")
	fs.StringVar(&f.tlsKey, "bus-tls-key", "", "client key file of --bus-tls-cert")
	fs.StringVar(&f.srvCert, "bus-server-cert", "", "with --bus embedded: the server's TLS certificate file (with --bus-server-key); clients then need TLS")
	fs.StringVar(&f.srvKey, "bus-server-key", "", "with --bus embedded: the server's TLS key file")
	fs.StringVar(&f.srvCA, "bus-client-ca", "", "with --bus embedded and TLS: clients must present a certificate this CA signed (mutual TLS)")
	fs.BoolVar(&f.insecure, "bus-insecure", false, "allow --bus-listen off loopback without --bus-token, --bus-user or --bus-client-ca: anyone reaching the port can read and write the bus")
}

// check validates the flags for the bus URL (embedded or not) and the
// embedded server's listen host, and reads the secret files.
func (f *busSecFlags) check(url, listenHost string) error {
	if url == "" {
		for _, v := range []struct{ name, v string }{{"--bus-token", f.token}, {"--bus-token-file", f.tokenFile},
			{"--bus-user", f.user}, {"--bus-password", f.password}, {"--bus-password-file", f.passwordFile}, {"--bus-creds", f.creds},
			{"--bus-tls-ca", f.tlsCA}, {"--bus-tls-cert", f.tlsCert}, {"--bus-tls-key", f.tlsKey},
			{"--bus-server-cert", f.srvCert}, {"--bus-server-key", f.srvKey}, {"--bus-client-ca", f.srvCA}} {
			if v.v != "" {
				return fmt.Errorf("%w: %s: only with --bus", errUsage, v.name)
			}
		}
		return nil
	}
	token, err := secret("--bus-token", f.token, f.tokenFile)
	if err != nil {
		return err
	}
	password, err := secret("--bus-password", f.password, f.passwordFile)
	if err != nil {
		return err
	}
	f.auth = bus.Auth{Token: token, User: f.user, Password: password}
	switch {
	case token != "" && (f.user != "" || password != ""):
		return fmt.Errorf("%w: --bus-token and --bus-user/--bus-password: set one of them", errUsage)
	case f.user != "" && password == "":
		return fmt.Errorf("%w: --bus-user %q: needs a password (--bus-password, ORDERFLOW_BUS_PASSWORD or --bus-password-file)", errUsage, f.user)
	case f.user == "" && password != "":
		return fmt.Errorf("%w: --bus-password: needs --bus-user", errUsage)
	}
	if url == "embedded" {
		for _, v := range []struct{ name, v string }{{"--bus-creds", f.creds}, {"--bus-tls-ca", f.tlsCA}, {"--bus-tls-cert", f.tlsCert}, {"--bus-tls-key", f.tlsKey}} {
			if v.v != "" {
				return fmt.Errorf("%w: %s: a client setting for --bus nats://...; the embedded server's TLS takes --bus-server-cert, --bus-server-key and --bus-client-ca", errUsage, v.name)
			}
		}
		if (f.srvCert == "") != (f.srvKey == "") {
			return fmt.Errorf("%w: --bus-server-cert and --bus-server-key go together", errUsage)
		}
		if f.srvCA != "" && f.srvCert == "" {
			return fmt.Errorf("%w: --bus-client-ca: needs --bus-server-cert and --bus-server-key (mutual TLS)", errUsage)
		}
		if !bus.IsLoopback(listenHost) && f.auth.IsZero() && f.srvCA == "" && !f.insecure {
			return fmt.Errorf("%w: --bus-listen host %q is not a loopback address: set --bus-token (or ORDERFLOW_BUS_TOKEN, --bus-token-file), --bus-user with a password, or --bus-client-ca, so the bus is not open to the network; --bus-insecure allows it anyway", errUsage, listenHost)
		}
		if cfg := f.embedded(); !cfg.TLS.IsZero() {
			if err := bus.CheckServerTLS(cfg.TLS); err != nil {
				return fmt.Errorf("%w: --bus-server-cert/--bus-server-key/--bus-client-ca: %v", errUsage, err)
			}
		}
		return nil
	}
	for _, v := range []struct{ name, v string }{{"--bus-server-cert", f.srvCert}, {"--bus-server-key", f.srvKey}, {"--bus-client-ca", f.srvCA}} {
		if v.v != "" {
			return fmt.Errorf("%w: %s: only with --bus embedded (for a cluster, --bus-tls-ca, --bus-tls-cert, --bus-tls-key)", errUsage, v.name)
		}
	}
	if f.insecure {
		return fmt.Errorf("%w: --bus-insecure: only with --bus embedded", errUsage)
	}
	if f.creds != "" && !f.auth.IsZero() {
		return fmt.Errorf("%w: --bus-creds and --bus-token or --bus-user: set one of them", errUsage)
	}
	if err := bus.CheckConnect(f.client("")); err != nil {
		return fmt.Errorf("%w: --bus-creds/--bus-tls-*: %v", errUsage, err)
	}
	return nil
}

// secret returns the value of a secret flag or, when given, its file's
// content; not both.
func secret(name, v, file string) (string, error) {
	if file == "" {
		return v, nil
	}
	if v != "" {
		return "", fmt.Errorf("%w: %s and %s-file: set one of them", errUsage, name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: %s-file: %v", errUsage, name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%w: %s-file %s: empty", errUsage, name, file)
	}
	return s, nil
}

// embedded returns the embedded server's security settings.
func (f *busSecFlags) embedded() bus.EmbeddedConfig {
	return bus.EmbeddedConfig{Auth: f.auth, TLS: bus.TLSFiles{CertFile: f.srvCert, KeyFile: f.srvKey, CAFile: f.srvCA},
		Insecure: f.insecure}
}

// client returns the connection settings for --bus nats://... named name.
func (f *busSecFlags) client(name string) bus.ConnectConfig {
	return bus.ConnectConfig{Name: name, Auth: f.auth, CredsFile: f.creds,
		TLS: bus.TLSFiles{CAFile: f.tlsCA, CertFile: f.tlsCert, KeyFile: f.tlsKey}}
}
