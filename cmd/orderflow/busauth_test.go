package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/bus"
	"github.com/orderflow/orderflow/market"
	"github.com/orderflow/orderflow/natstest"
)

// TestRunBusSecurityFlagsRefused: TLS and authentication flag mistakes,
// and an embedded server off loopback without authentication, exit 2
// with a message naming the flag, before the data directory is touched.
func TestRunBusSecurityFlagsRefused(t *testing.T) {
	runTestNoLeaks(t)
	files := t.TempDir()
	p := natstest.NewPKI(t, files)
	empty := filepath.Join(files, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(files, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nats1 = "nats://127.0.0.1:1"
	runTestRefused(t, []runRefusal{
		{"AllInterfacesWithoutAuth", []string{"--bus", "embedded", "--bus-listen", "0.0.0.0:4222"}, nil, "--bus-insecure"},
		{"EmptyHostWithoutAuth", []string{"--bus", "embedded", "--bus-listen", ":4222"}, nil, "not a loopback address"},
		{"LANAddressWithoutAuth", []string{"--bus", "embedded", "--bus-listen", "192.0.2.7:4222"}, nil, "not a loopback address"},
		{"TLSWithoutClientCAIsNoAuth", []string{"--bus", "embedded", "--bus-listen", "0.0.0.0:4222", "--bus-server-cert", p.ServerCert, "--bus-server-key", p.ServerKey}, nil, "--bus-insecure"},
		{"TokenAndUser", []string{"--bus", "embedded", "--bus-token", "a", "--bus-user", "u", "--bus-password", "p"}, nil, "set one of them"},
		{"TokenAndTokenFile", []string{"--bus", "embedded", "--bus-token", "a", "--bus-token-file", tokenFile}, nil, "--bus-token-file"},
		{"EnvTokenAndTokenFile", []string{"--bus", "embedded", "--bus-token-file", tokenFile}, map[string]string{"ORDERFLOW_BUS_TOKEN": "a"}, "--bus-token-file"},
		{"MissingTokenFile", []string{"--bus", "embedded", "--bus-token-file", tokenFile + ".missing"}, nil, "--bus-token-file"},
		{"EmptyTokenFile", []string{"--bus", "embedded", "--bus-token-file", empty}, nil, "empty"},
		{"UserWithoutPassword", []string{"--bus", "embedded", "--bus-user", "u"}, nil, "needs a password"},
		{"PasswordWithoutUser", []string{"--bus", nats1, "--bus-password-file", tokenFile}, nil, "needs --bus-user"},
		{"ServerCertWithoutKey", []string{"--bus", "embedded", "--bus-server-cert", p.ServerCert}, nil, "--bus-server-key"},
		{"ClientCAWithoutCert", []string{"--bus", "embedded", "--bus-token", "a", "--bus-client-ca", p.CA}, nil, "--bus-client-ca"},
		{"ServerKeyNotMatching", []string{"--bus", "embedded", "--bus-server-cert", p.ServerCert, "--bus-server-key", p.ClientKey}, nil, "--bus-server-cert"},
		{"ClientCANotPEM", []string{"--bus", "embedded", "--bus-server-cert", p.ServerCert, "--bus-server-key", p.ServerKey, "--bus-client-ca", p.ServerKey}, nil, "--bus-client-ca"},
		{"CredsWithEmbedded", []string{"--bus", "embedded", "--bus-creds", p.CA}, nil, "--bus-creds"},
		{"ClientTLSWithEmbedded", []string{"--bus", "embedded", "--bus-tls-ca", p.CA}, nil, "--bus-tls-ca"},
		{"ServerCertWithCluster", []string{"--bus", nats1, "--bus-server-cert", p.ServerCert, "--bus-server-key", p.ServerKey}, nil, "--bus-server-cert"},
		{"InsecureWithCluster", []string{"--bus", nats1, "--bus-insecure"}, nil, "--bus-insecure"},
		{"CredsAndToken", []string{"--bus", nats1, "--bus-creds", p.CA, "--bus-token", "a"}, nil, "--bus-creds"},
		{"MissingCreds", []string{"--bus", nats1, "--bus-creds", p.CA + ".missing"}, nil, "--bus-creds"},
		{"ClientCertWithoutKey", []string{"--bus", nats1, "--bus-tls-cert", p.ClientCert}, nil, "--bus-tls"},
		{"ClientCANotPEMCluster", []string{"--bus", nats1, "--bus-tls-ca", p.ServerKey}, nil, "--bus-tls"},
		{"TokenWithoutBus", []string{"--bus-token", "a"}, nil, "only with --bus"},
		{"TokenEnvWithoutBus", nil, map[string]string{"ORDERFLOW_BUS_TOKEN": "a"}, "only with --bus"},
	})
}

// TestRunBusEmbeddedSecured: `run --bus embedded` with mutual TLS and a
// token read from a file (so it is not on the command line) serves its
// bus only to clients with both: a client without a certificate, one
// without the token, and a plain-text one are refused; one with the CA,
// its certificate and the token reads the trades the run publishes (its
// own publisher connects in-process). SIGINT stops it with exit 0.
func TestRunBusEmbeddedSecured(t *testing.T) {
	runTestNoLeaks(t)
	ws, rest := runTestSim(t)
	dir, files := t.TempDir(), t.TempDir()
	p := natstest.NewPKI(t, files)
	tokenFile := filepath.Join(files, "token")
	if err := os.WriteFile(tokenFile, []byte("bus-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"run", "--symbols", "DENTUSDT", "--ws-url", ws, "--rest-url", rest, "--listen", "off",
		"--data-dir", dir, "--bus", "embedded", "--bus-listen", addr, "--bus-token-file", tokenFile,
		"--bus-server-cert", p.ServerCert, "--bus-server-key", p.ServerKey, "--bus-client-ca", p.CA}
	env, _, stderr := runTestEnv(nil)
	exit := make(chan int, 1)
	go func() { exit <- runMain(env, args) }()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			<-exit
		}
	}()
	runTestWait(t, "the embedded server", 20*time.Second, func() bool {
		return strings.Contains(stderr.String(), "Publishing on the bus")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tlsURL := "tls://" + addr
	withCert := bus.TLSFiles{CAFile: p.CA, CertFile: p.ClientCert, KeyFile: p.ClientKey}
	for _, c := range []struct {
		name string
		url  string
		cfg  bus.ConnectConfig
	}{
		{"PlainText", "nats://" + addr, bus.ConnectConfig{Auth: bus.Auth{Token: "bus-test-token"}}},
		{"NoClientCert", tlsURL, bus.ConnectConfig{Auth: bus.Auth{Token: "bus-test-token"}, TLS: bus.TLSFiles{CAFile: p.CA}}},
		{"NoToken", tlsURL, bus.ConnectConfig{TLS: withCert}},
		{"WrongToken", tlsURL, bus.ConnectConfig{Auth: bus.Auth{Token: "bus-test-tokem"}, TLS: withCert}},
	} {
		nc, err := bus.Connect(ctx, c.url, c.cfg)
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected; want refused", c.name)
		}
		if strings.Contains(c.name, "Token") && !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v; want an authorization error", c.name, err)
		}
	}
	nc, err := bus.Connect(ctx, tlsURL, bus.ConnectConfig{Auth: bus.Auth{Token: "bus-test-token"}, TLS: withCert})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var m *jetstream.RawStreamMsg
	runTestWait(t, "a DENTUSDT trade on the bus", 60*time.Second, func() bool {
		m, err = st.GetLastMsgForSubject(ctx, bus.Subject(market.Spot, "DENTUSDT", bus.TopicTrades))
		return err == nil
	})
	var tr bus.Trade
	if err := bus.DecodeTrade(m.Data, &tr); err != nil || tr.Symbol != "DENTUSDT" {
		t.Fatalf("trade %+v: %v", tr, err)
	}
	nc.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case c := <-exit:
		if c != 0 {
			t.Fatalf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop on SIGINT")
	}
	if strings.Contains(stderr.String(), "bus-test-token") {
		t.Fatal("the token was logged")
	}
}

// TestBusSecurityFlagsAccepted: what the check lets through off loopback
// (without starting anything, so no test binds every interface), and
// the credential it resolves from a file.
func TestBusSecurityFlagsAccepted(t *testing.T) {
	files := t.TempDir()
	p := natstest.NewPKI(t, files)
	pwFile := filepath.Join(files, "pw")
	if err := os.WriteFile(pwFile, []byte("  pw from file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    busFlags
		want bus.Auth
	}{
		{"InsecureAllowsOpen", busFlags{listen: "0.0.0.0:4222", sec: busSecFlags{insecure: true}}, bus.Auth{}},
		{"TokenOffLoopback", busFlags{listen: "0.0.0.0:4222", sec: busSecFlags{token: "t"}}, bus.Auth{Token: "t"}},
		{"UserPasswordFile", busFlags{listen: "[::]:4222", sec: busSecFlags{user: "u", passwordFile: pwFile}}, bus.Auth{User: "u", Password: "pw from file"}},
		{"MutualTLSOffLoopback", busFlags{listen: "0.0.0.0:4222", sec: busSecFlags{srvCert: p.ServerCert, srvKey: p.ServerKey, srvCA: p.CA}}, bus.Auth{}},
		{"LoopbackOpen", busFlags{listen: "localhost:4222"}, bus.Auth{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.url, tc.f.retention, tc.f.replicas = "embedded", time.Hour, 1
			if err := tc.f.check(); err != nil {
				t.Fatal(err)
			}
			if tc.f.sec.auth != tc.want {
				t.Fatalf("auth %+v; want %+v", tc.f.sec.auth, tc.want)
			}
		})
	}
}
