package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI holds PEM files generated for a test: a CA, a server certificate for
// 127.0.0.1 and localhost and a client certificate it signed, and a client
// certificate signed by another CA (one a server must refuse).
type PKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
	OtherCA, StrangerCert, StrangerKey               string
}

// NewPKI generates a PKI with P-256 keys, valid from an hour ago for a
// day, and writes it into dir.
func NewPKI(tb testing.TB, dir string) PKI {
	tb.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}
	serial := int64(0)
	// issue signs tmpl with parent's key (itself when parent is nil) and
	// writes the certificate and its key as name.pem and name-key.pem.
	issue := func(name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (cert *x509.Certificate, key *ecdsa.PrivateKey, certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		serial++
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			tb.Fatal(err)
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			tb.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			tb.Fatal(err)
		}
		return cert, key, write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	leaf := func(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	}
	var p PKI
	ca, caKey, caFile, _ := issue("ca", caTmpl("orderflow test CA"), nil, nil)
	p.CA = caFile
	_, _, p.ServerCert, p.ServerKey = issue("server", leaf("orderflow bus", x509.ExtKeyUsageServerAuth), ca, caKey)
	_, _, p.ClientCert, p.ClientKey = issue("client", leaf("orderflow client", x509.ExtKeyUsageClientAuth), ca, caKey)
	other, otherKey, otherFile, _ := issue("other-ca", caTmpl("another CA"), nil, nil)
	p.OtherCA = otherFile
	_, _, p.StrangerCert, p.StrangerKey = issue("stranger", leaf("stranger", x509.ExtKeyUsageClientAuth), other, otherKey)
	return p
}
