// Tests of DNS SRV discovery.

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSRV is one SRV record's target and port.
type testSRV struct {
	target string
	port   uint16
}

// testDNS is a small DNS server on 127.0.0.1 (UDP, kernel-chosen port)
// that answers SRV and A questions from its maps, NXDOMAIN otherwise, with
// hand-encoded messages.
type testDNS struct {
	conn net.PacketConn
	mu   sync.Mutex
	srv  map[string][]testSRV // fully qualified, lower case
	a    map[string][]net.IP
	asks []string // the questions it was asked, "name type"
}

// startTestDNS serves until the test ends.
func startTestDNS(t *testing.T, srv map[string][]testSRV, a map[string][]net.IP) *testDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{conn: conn, srv: srv, a: a}
	go d.serve()
	t.Cleanup(func() { conn.Close() })
	return d
}

// resolver is a net.Resolver that asks only d.
func (d *testDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", addr)
	}}
}

func (d *testDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := d.answer(buf[:n]); out != nil {
			d.conn.WriteTo(out, from)
		}
	}
}

// DNS record types and class used here.
const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsTypeSRV  = 33
	dnsClassIN  = 1
)

// answer builds the response to one query message.
func (d *testDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	name, off, ok := readDNSName(q, 12)
	if !ok || off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	question := q[12 : off+4]
	d.mu.Lock()
	d.asks = append(d.asks, name+" "+strconv.Itoa(int(qtype)))
	srvs, hasSRV := d.srv[name]
	ips, hasA := d.a[name]
	d.mu.Unlock()
	var answers [][]byte
	switch qtype {
	case dnsTypeSRV:
		for i, s := range srvs {
			// priorities in list order: net sorts by priority and shuffles
			// records of equal priority by weight
			rdata := binary.BigEndian.AppendUint16(nil, uint16(i))
			rdata = binary.BigEndian.AppendUint16(rdata, 10) // weight
			rdata = binary.BigEndian.AppendUint16(rdata, s.port)
			rdata = appendDNSName(rdata, s.target)
			answers = append(answers, dnsRecord(dnsTypeSRV, rdata))
		}
	case dnsTypeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				answers = append(answers, dnsRecord(dnsTypeA, v4))
			}
		}
	}
	rcode := uint16(0)
	if !hasSRV && !hasA {
		rcode = 3 // NXDOMAIN
	}
	out := make([]byte, 12, 512)
	copy(out, q[:2])                                                                                        // id
	binary.BigEndian.PutUint16(out[2:], 0x8000|0x0400|(binary.BigEndian.Uint16(q[2:])&0x0100)|0x0080|rcode) // QR, AA, RD as asked, RA
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(len(answers)))
	out = append(out, question...)
	for _, a := range answers {
		out = append(out, a...)
	}
	return out
}

// dnsRecord is an answer for the question's name (a pointer to offset 12).
func dnsRecord(typ uint16, rdata []byte) []byte {
	b := []byte{0xc0, 12}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, dnsClassIN)
	b = binary.BigEndian.AppendUint32(b, 60)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

// readDNSName reads an uncompressed name at off, lower-cased with its
// trailing dot.
func readDNSName(b []byte, off int) (string, int, bool) {
	var labels []string
	for off < len(b) {
		n := int(b[off])
		off++
		if n == 0 {
			return strings.ToLower(strings.Join(labels, ".")) + ".", off, true
		}
		if n > 63 || off+n > len(b) {
			return "", 0, false
		}
		labels = append(labels, string(b[off:off+n]))
		off += n
	}
	return "", 0, false
}

// appendDNSName appends name (with or without its trailing dot) as labels.
func appendDNSName(b []byte, name string) []byte {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// urlMap renders a cluster as name=url lines, sorted, for comparison.
func urlMap(m map[string][]*url.URL) string {
	var out []string
	for n, us := range m {
		for _, u := range us {
			out = append(out, n+"="+u.String())
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestSRVCluster resolves clusters from SRV and A records served by the
// test's DNS server: this member found by address or by name, the others
// numbered, --discovery-srv-name, the ssl records, and the errors.
func TestSRVCluster(t *testing.T) {
	lo := net.ParseIP("127.0.0.1")
	dns := startTestDNS(t, map[string][]testSRV{
		"_etcd-server._tcp.etcd.test.":       {{"infra0.etcd.test.", 2380}, {"infra1.etcd.test.", 2381}, {"infra2.etcd.test.", 2382}},
		"_etcd-server-blue._tcp.etcd.test.":  {{"blue0.etcd.test.", 2480}, {"blue1.etcd.test.", 2481}},
		"_etcd-server-ssl._tcp.ssl.test.":    {{"secure0.ssl.test.", 2390}},
		"_etcd-server._tcp.both.test.":       {{"plain0.both.test.", 2391}},
		"_etcd-server-ssl._tcp.both.test.":   {{"secure0.ssl.test.", 2390}},
		"_etcd-client._tcp.etcd.test.":       {{"infra0.etcd.test.", 2379}, {"infra1.etcd.test.", 2389}},
		"_etcd-client-ssl._tcp.etcd.test.":   {{"infra2.etcd.test.", 2399}},
		"_etcd-client-blue._tcp.etcd.test.":  {{"blue0.etcd.test.", 2479}},
		"_etcd-server._tcp.unresolved.test.": {{"nowhere.unresolved.test.", 2380}},
	}, map[string][]net.IP{
		"infra0.etcd.test.": {lo}, "infra1.etcd.test.": {lo}, "infra2.etcd.test.": {lo},
		"blue0.etcd.test.": {lo}, "blue1.etcd.test.": {lo},
		"secure0.ssl.test.": {lo}, "plain0.both.test.": {lo},
	})
	tests := []struct {
		name, domain, srvName, advertise string
		want, wantErr                    string
	}{
		{"self by address", "etcd.test", "", "http://127.0.0.1:2381", "0=http://infra0.etcd.test:2380,1=http://infra2.etcd.test:2382,me=http://infra1.etcd.test:2381", ""},
		{"self by name", "etcd.test", "", "http://infra2.etcd.test:2382", "0=http://infra0.etcd.test:2380,1=http://infra1.etcd.test:2381,me=http://infra2.etcd.test:2382", ""},
		{"srv name", "etcd.test", "blue", "http://127.0.0.1:2480", "0=http://blue1.etcd.test:2481,me=http://blue0.etcd.test:2480", ""},
		{"ssl and plain", "both.test", "", "http://127.0.0.1:2391", "0=https://secure0.ssl.test:2390,me=http://plain0.both.test:2391", ""},
		{"scheme mismatch", "ssl.test", "", "http://127.0.0.1:2390", "", "scheme mismatch"},
		{"not in the records", "etcd.test", "", "http://127.0.0.1:2999", "", `cannot find local etcd member "me" in SRV records`},
		{"no records", "none.test", "", "http://127.0.0.1:2380", "", "error querying DNS SRV records"},
		{"target without address", "unresolved.test", "", "http://127.0.0.1:2380", "", "resolve SRV target nowhere.unresolved.test."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.advertise)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &config{Name: "me", DiscoverySRV: tc.domain, DiscoverySRVName: tc.srvName, InitialAdvertisePeerURLs: []*url.URL{u}, hooks: testHooks{resolver: dns.resolver()}}
			got, err := srvCluster(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if urlMap(got) != tc.want {
				t.Errorf("cluster %s, want %s", urlMap(got), tc.want)
			}
		})
	}
	clients := []struct{ srvName, want string }{
		{"", "http://infra0.etcd.test:2379 http://infra1.etcd.test:2389 https://infra2.etcd.test:2399"},
		{"blue", "http://blue0.etcd.test:2479"},
	}
	for _, c := range clients {
		urls, err := srvClientURLs(context.Background(), dns.resolver(), "etcd.test", c.srvName)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range urls {
			got = append(got, u.String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("client URLs (srv name %q) %v, want %s", c.srvName, got, c.want)
		}
	}
	dns.mu.Lock()
	asked := strings.Join(dns.asks, "\n")
	dns.mu.Unlock()
	for _, q := range []string{"_etcd-server-ssl._tcp.etcd.test. 33", "_etcd-server._tcp.etcd.test. 33", "infra1.etcd.test. 1"} {
		if !strings.Contains(asked, q) {
			t.Errorf("the DNS server was never asked %q", q)
		}
	}
}

// TestSRVBootstrap starts three members and a proxy that find each other
// through SRV records of the test's DNS server.
func TestSRVBootstrap(t *testing.T) {
	var peerPorts, clientPorts []uint16
	var srvs, clients []testSRV
	for i := 0; i < 3; i++ {
		peerPorts = append(peerPorts, uint16(confFreePort(t)))
		clientPorts = append(clientPorts, uint16(confFreePort(t)))
		srvs = append(srvs, testSRV{"localhost.", peerPorts[i]})
		clients = append(clients, testSRV{"localhost.", clientPorts[i]})
	}
	dns := startTestDNS(t, map[string][]testSRV{
		"_etcd-server._tcp.boot.test.": srvs,
		"_etcd-client._tcp.boot.test.": clients,
	}, map[string][]net.IP{"localhost.": {net.ParseIP("127.0.0.1")}})
	var servers []*server
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("s%d", i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", peerPorts[i])
		cfg := memberConfig(t, name, t.TempDir(), fmt.Sprintf("http://127.0.0.1:%d", clientPorts[i]), map[string]string{name: peer})
		cfg.InitialCluster = nil
		cfg.HeartbeatMs, cfg.ElectionMs = 20, 200
		cfg.InitialClusterToken = "srv-cluster"
		cfg.DiscoverySRV = "boot.test"
		cfg.Proxy = "off"
		cfg.hooks.resolver = dns.resolver()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := startNode(context.Background(), cfg)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			stopNode(t, n)
			mu.Lock()
			servers = append(servers, n.(*server))
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waitFor(t, 15*time.Second, "three members with one leader", func() bool {
		l := servers[0].leader.Load()
		for _, s := range servers {
			if l == 0 || s.leader.Load() != l || len(membersFromStore(s.store)) != 3 || s.clusterID != servers[0].clusterID {
				return false
			}
		}
		return true
	})
	putValue(t, "http://"+servers[0].ClientAddrs()[0], "srv", "ok")

	// a proxy on the same records
	pcfg := &config{Name: "p", DataDir: t.TempDir(), Proxy: "on", DiscoverySRV: "boot.test", hooks: testHooks{resolver: dns.resolver()},
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new"}
	setProxyTimings(pcfg)
	n, err := startNode(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	p := n.(*proxy)
	waitFor(t, 5*time.Second, "the write through the SRV proxy", func() bool {
		return getValue(t, "http://"+p.ClientAddrs()[0], "srv") == "ok"
	})
}
