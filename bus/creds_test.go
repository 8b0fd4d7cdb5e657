package bus_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/orderflow/orderflow/bus"
)

// TestConnectCredsFile: against a NATS server in operator (JWT) mode, as a
// managed cluster runs, a client without credentials, or with a user of
// an account the operator did not sign, is refused; one with a creds file
// (user JWT and NKey seed, generated for the test) publishes and consumes
// on JetStream.
func TestConnectCredsFile(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	operator, err := nkeys.CreateOperator()
	must(err)
	opPub, err := operator.PublicKey()
	must(err)
	opClaims := jwt.NewOperatorClaims(opPub)
	_, err = opClaims.Encode(operator)
	must(err)
	account := func(signer nkeys.KeyPair, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		c := jwt.NewAccountClaims(pub)
		if js {
			c.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := c.Encode(signer)
		must(err)
		return kp, pub, tok
	}
	_, sysPub, sysJWT := account(operator, false)
	appKey, appPub, appJWT := account(operator, true)
	resolver := &server.MemAccResolver{}
	must(resolver.Store(sysPub, sysJWT))
	must(resolver.Store(appPub, appJWT))

	dir := t.TempDir()
	creds := func(name string, acct nkeys.KeyPair) string {
		user, err := nkeys.CreateUser()
		must(err)
		pub, err := user.PublicKey()
		must(err)
		tok, err := jwt.NewUserClaims(pub).Encode(acct)
		must(err)
		seed, err := user.Seed()
		must(err)
		b, err := jwt.FormatUserConfig(tok, seed)
		must(err)
		p := filepath.Join(dir, name+".creds")
		must(os.WriteFile(p, b, 0o600))
		return p
	}
	good := creds("app", appKey)
	// A user of an account signed by another operator.
	other, err := nkeys.CreateOperator()
	must(err)
	strangerKey, _, _ := account(other, true)
	stranger := creds("stranger", strangerKey)

	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(dir, "store"),
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 64 << 20,
		TrustedOperators: []*jwt.OperatorClaims{opClaims},
		SystemAccount:    sysPub,
		AccountResolver:  resolver,
	}
	srv, err := server.NewServer(opts)
	must(err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	url := srv.ClientURL()
	mustRefused(t, url, bus.ConnectConfig{}, nats.ErrAuthorization)
	mustRefused(t, url, bus.ConnectConfig{CredsFile: stranger}, nats.ErrAuthorization)
	nc, err := authConnect(t, url, bus.ConnectConfig{CredsFile: good})
	must(err)
	publishAndConsume(t, nc)
}
