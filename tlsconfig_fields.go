// This file owns nothing for long: it is the cli branch's copy of the
// transportSecurity type (the tls branch defines the same type in tls.go,
// and this copy is dropped when the two are merged), so the command line can
// parse the TLS flags into the config before TLS is wired.
package main

// transportSecurity is the TLS setup of one side (clients or peers), as
// etcd's --cert-file, --key-file, ... and --peer-* flags give it.
type transportSecurity struct {
	CertFile        string
	KeyFile         string
	ClientCertAuth  bool
	TrustedCAFile   string
	CRLFile         string
	AutoTLS         bool
	AllowedCN       string
	AllowedHostname string
}
