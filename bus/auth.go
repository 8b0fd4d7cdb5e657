package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ErrInsecureListen is returned by StartEmbedded for a listener off
// loopback with neither a credential nor client certificates required.
var ErrInsecureListen = errors.New("bus: embedded server off loopback without authentication")

// Auth is the credential a client presents, or the one the embedded
// server requires of every client. Set a token or a user with a password,
// not both. The zero value is no authentication.
type Auth struct {
	// Token is a shared secret (NATS's authorization token).
	Token string
	// User and Password are a single user's name and password.
	User, Password string
}

// IsZero reports whether no credential is set.
func (a Auth) IsZero() bool { return a.Token == "" && a.User == "" && a.Password == "" }

func (a Auth) check() error {
	if a.Token != "" && (a.User != "" || a.Password != "") {
		return errors.New("a token and a user/password: set one of them")
	}
	if (a.User == "") != (a.Password == "") {
		return errors.New("a user needs a password and a password a user")
	}
	return nil
}

// TLSFiles names the PEM files of one end of a TLS connection.
//
// On the embedded server, CertFile and KeyFile are its certificate and
// key (both turn TLS on and make it required); CAFile, when set, makes
// every client present a certificate that CA signed (mutual TLS).
//
// On a client, CAFile is the CA that signed the server's certificate
// (default: the system's roots); CertFile and KeyFile are the client's
// certificate for mutual TLS. Any of them turns TLS on.
type TLSFiles struct {
	CertFile, KeyFile string
	CAFile            string
}

// IsZero reports whether no file is set.
func (f TLSFiles) IsZero() bool { return f.CertFile == "" && f.KeyFile == "" && f.CAFile == "" }

// serverConfig loads the server side: certificate and key, and the client
// CA when one is set.
func (f TLSFiles) serverConfig() (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	// Load here first: the server's own error does not say which file.
	if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
		return nil, fmt.Errorf("certificate %s, key %s: %w", f.CertFile, f.KeyFile, err)
	}
	if f.CAFile != "" {
		if _, err := loadPool(f.CAFile); err != nil {
			return nil, err
		}
	}
	cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: f.CertFile,
		KeyFile:  f.KeyFile,
		CaFile:   f.CAFile,
		Verify:   f.CAFile != "",
	})
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return cfg, nil
}

// clientOptions checks the client side's files and returns nats.go's
// options for them.
func (f TLSFiles) clientOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("a client certificate needs both a certificate and a key file")
	}
	if f.CAFile != "" {
		if _, err := loadPool(f.CAFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.RootCAs(f.CAFile))
	}
	if f.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", f.CertFile, f.KeyFile, err)
		}
		opts = append(opts, nats.ClientCert(f.CertFile, f.KeyFile))
	}
	return opts, nil // each of them turns TLS on (nats.go's Secure)
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// IsLoopback reports whether host (a listen address's host part) only
// accepts connections from this machine: "localhost" or a loopback IP.
// The empty host and 0.0.0.0 listen everywhere.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secured reports whether the server authenticates its clients: a
// credential, or client certificates signed by a CA.
func (c EmbeddedConfig) secured() bool {
	return !c.Auth.IsZero() || c.TLS.CAFile != ""
}

// applySecurity checks the embedded server's TLS and authentication
// settings and sets them on opts.
func (c EmbeddedConfig) applySecurity(opts *server.Options) error {
	if err := c.Auth.check(); err != nil {
		return fmt.Errorf("bus: embedded server auth: %w", err)
	}
	host := cmpOr(c.Host, "127.0.0.1")
	if !IsLoopback(host) && !c.secured() && !c.Insecure {
		return fmt.Errorf("%w: %s (set a token, a user/password or a client CA, or Insecure)", ErrInsecureListen, host)
	}
	if !c.TLS.IsZero() {
		cfg, err := c.TLS.serverConfig()
		if err != nil {
			return fmt.Errorf("bus: embedded server: %w", err)
		}
		opts.TLSConfig = cfg
		opts.TLS = true
		opts.TLSVerify = c.TLS.CAFile != ""
		opts.TLSTimeout = 5 // seconds, the server's default is 2
	}
	opts.Authorization = c.Auth.Token
	opts.Username = c.Auth.User
	opts.Password = c.Auth.Password
	return nil
}

// clientOptions returns nats.go's options for cfg's credential and TLS
// files, checked.
func (cfg ConnectConfig) securityOptions() ([]nats.Option, error) {
	if err := cfg.Auth.check(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case cfg.CredsFile != "":
		if !cfg.Auth.IsZero() {
			return nil, errors.New("a credentials file and a token or user/password: set one of them")
		}
		if _, err := os.Stat(cfg.CredsFile); err != nil {
			return nil, fmt.Errorf("credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.Auth.Token != "":
		opts = append(opts, nats.Token(cfg.Auth.Token))
	case cfg.Auth.User != "":
		opts = append(opts, nats.UserInfo(cfg.Auth.User, cfg.Auth.Password))
	}
	tlsOpts, err := cfg.TLS.clientOptions()
	if err != nil {
		return nil, err
	}
	return append(opts, tlsOpts...), nil
}

// CheckServerTLS loads the embedded server's TLS files as StartEmbedded
// would, so a command can report a bad file before anything starts.
func CheckServerTLS(f TLSFiles) error {
	_, err := f.serverConfig()
	return err
}

// CheckConnect checks cfg's credential and TLS settings (files readable,
// certificates parse, no two credentials) as Connect would, without
// dialing.
func CheckConnect(cfg ConnectConfig) error {
	_, err := cfg.securityOptions()
	return err
}
