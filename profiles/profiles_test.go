package profiles

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// sample is a scenario using every field.
func sample() Data {
	return Data{
		Hostname: "edge1.contoso.test",
		DNS:      "172.28.77.53",
		AcceptedDomains: []Domain{
			{Name: "contoso.test", Type: Authoritative},
			{Name: "Fabrikam.test", Type: InternalRelay},
			{Name: "partner.test", Type: ExternalRelay},
		},
		Recipients:   []string{"alice@contoso.test", "Bob@contoso.test", "alice@contoso.test"},
		InternalHost: "172.28.77.200",
		Routes: []Route{
			{Domains: []string{"partner.test", "tailspin.test"}, SmartHosts: []string{"172.28.77.200:2526"}},
			{Domains: []string{"secure.test"}, SmartHosts: []string{"[172.28.77.201]:587", "relay.contoso.test"}, TLS: true, Username: "relayuser", Password: "p^w:x"},
			{Domains: []string{"mx.test"}},
			{Domains: []string{"*"}, SmartHosts: []string{"[172.28.77.200]:2525"}},
		},
		RelayNetworks: []string{"172.28.77.128/28"},
		Listeners: []Listener{
			{Name: "Default Frontend", Port: 25, TLS: true},
			{Name: "Client Frontend", Port: 587, TLS: true, Auth: true, RequireAuth: true},
			{Name: "Anonymous Relay", Port: 2587, AcceptAnyRecipient: true, RemoteRanges: []string{"172.28.77.1/32"}},
		},
		Users:           []User{{Name: "carol@contoso.test", Password: "s3cret pw"}},
		DNSBL:           []string{"bl.mailflow.test"},
		RetryInterval:   10 * time.Second,
		DelayWarning:    time.Minute,
		Expiry:          5 * time.Minute,
		MaxMessageSize:  10 << 20,
		MaxRecipients:   100,
		TLSCert:         "/etc/mailflow/tls/cert.pem",
		TLSKey:          "/etc/mailflow/tls/key.pem",
		CACert:          "/etc/mailflow/tls/ca.pem",
		Clamd:           "172.28.77.33:3310",
		AntivirusAction: AntivirusReject,
		SPF:             SPFReject,
		Mailboxes:       []Mailbox{{Address: "Alice@contoso.test", Password: "alice-secret", Quota: 4000}, {Address: "bob@contoso.test"}},
	}
}

func TestNamesAndLoad(t *testing.T) {
	if got, want := Names(), []string{"chasquid", "exim", "opensmtpd", "postfix"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range Names() {
		p, err := Load(n)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != n || p.Image != n || p.Port != 25 || !reflect.DeepEqual(p.Start, []string{"/bin/sh", StartScript}) {
			t.Errorf("Load(%q) = %+v", n, *p)
		}
		p.Start[0] = "changed" // a copy: the table is untouched
		if q, _ := Load(n); q.Start[0] != "/bin/sh" {
			t.Errorf("Load(%q) shares Start with the table", n)
		}
	}
	for _, bad := range []string{"sendmail", "testdata", "", ".", ".."} {
		if _, err := Load(bad); err == nil {
			t.Errorf("Load(%q) succeeded", bad)
		}
	}
}

// copyProfile writes built-in profile name into a new directory dir/as, as a user
// would start a profile of their own, and returns that directory.
func copyProfile(t *testing.T, name, dir, as string) string {
	t.Helper()
	sub, err := fs.Sub(builtin, name)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, as)
	if err := os.CopyFS(to, sub); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestLoadDir loads a profile from a directory, by absolute and by relative path:
// named after the directory, built from it, rendering as the built-in it was copied
// from.
func TestLoadDir(t *testing.T) {
	dir := copyProfile(t, "postfix", t.TempDir(), "my-mta")
	builtinP, _ := Load("postfix")
	want, err := builtinP.Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir))
	for _, ref := range []string{dir, "./my-mta", "my-mta/"} {
		p, err := Load(ref)
		if err != nil {
			t.Fatalf("Load(%q): %v", ref, err)
		}
		if p.Name != "my-mta" || p.Image != dir || p.Port != 25 || !reflect.DeepEqual(p.Start, []string{"/bin/sh", StartScript}) ||
			p.HopLimit != builtinP.HopLimit || !reflect.DeepEqual(p.Lacks, builtinP.Lacks) || !reflect.DeepEqual(p.QueueLength, builtinP.QueueLength) {
			t.Errorf("Load(%q) = %+v, want the built-in's settings named my-mta, image %s", ref, *p, dir)
		}
		got, err := p.Render(sample())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Load(%q).Render differs from the built-in profile's", ref)
		}
	}
	// A template changed in the directory is what renders: the directory is read, not
	// the built-in copy.
	if err := os.WriteFile(filepath.Join(dir, "transport.tmpl"), []byte("# {{.Hostname}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := Load(dir)
	files, err := p.Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == "/etc/postfix/transport" && string(f.Content) != "# edge1.contoso.test\n" {
			t.Errorf("transport = %q, want the directory's own template", f.Content)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Load(missing directory) = %v, want not found", err)
	}
	if _, err := Load(t.TempDir() + "/"); err == nil || !strings.Contains(err.Error(), ManifestFile) {
		t.Errorf("a directory without %s: Load = %v", ManifestFile, err)
	}
}

// TestManifestErrors: a manifest that cannot work is refused when the profile is
// loaded, naming the problem.
func TestManifestErrors(t *testing.T) {
	const good = "files:\n  - {template: start.sh.tmpl, path: /etc/mailflow/start.sh, mode: 0755}\n"
	cases := map[string]struct{ manifest, want string }{
		"unknown field":     {good + "retries: 3\n", "field retries not found"},
		"unknown feature":   {good + "lacks: {dnbsl: no}\n", `unknown feature "dnbsl"`},
		"no reason":         {good + "lacks: {dnsbl: \"\"}\n", "say why"},
		"no files":          {"port: 25\n", "none listed"},
		"missing template":  {"files:\n  - {template: main.cf.tmpl, path: /etc/main.cf, mode: 0644}\n", "main.cf.tmpl not found"},
		"relative path":     {"files:\n  - {template: start.sh.tmpl, path: etc/start.sh, mode: 0755}\n", "not absolute"},
		"template in a dir": {"files:\n  - {template: ../start.sh.tmpl, path: /etc/start.sh, mode: 0755}\n", "a file name of the profile directory"},
		"no mode":           {"files:\n  - {template: start.sh.tmpl, path: /etc/start.sh}\n", "mode"},
		"twice":             {good + "  - {template: start.sh.tmpl, path: /etc/mailflow/start.sh, mode: 0755}\n", "rendered twice"},
		"bad port":          {good + "port: 70000\n", "port 70000"},
		"negative timer":    {good + "timers: {retry: -1s}\n", "negative"},
		"bad duration":      {good + "inactivity_timeout: soon\n", "soon"},
	}
	for name, c := range cases {
		dir := filepath.Join(t.TempDir(), "p")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "start.sh.tmpl"), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(c.manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := load(os.DirFS(dir), "p", dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: load = %v, want an error containing %q", name, err, c.want)
		}
	}
}

// TestRender checks the key lines of each profile, and the whole output against
// testdata/NAME.golden (go test ./profiles -update rewrites them).
func TestRender(t *testing.T) {
	tests := []struct {
		profile string
		want    map[string][]string // path -> lines (substrings) it must contain
	}{
		{"postfix", map[string][]string{
			StartScript: {
				"printf 'nameserver %s\\noptions attempts:1 timeout:2\\n' '172.28.77.53' >/etc/resolv.conf",
				"exec postfix start-fg",
			},
			"/etc/postfix/main.cf": {
				"myhostname = edge1.contoso.test",
				"mynetworks = 127.0.0.0/8 172.28.77.128/28",
				"relay_domains = contoso.test fabrikam.test partner.test",
				"relay_recipient_maps = hash:/etc/postfix/relay_recipients",
				"relayhost = [172.28.77.200]:2525",
				"reject_rbl_client bl.mailflow.test",
				"mailflow_relay_checks = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
				"mailflow_client_checks_2587 = check_client_access cidr:{ { 172.28.77.1/32 DUNNO }, { 0.0.0.0/0 REJECT } }, $mailflow_client_checks",
				"mailflow_relay_checks_2587 = check_client_access cidr:{ { 172.28.77.1/32 OK } }, $mailflow_relay_checks",
				"hopcount_limit = 30",
				"message_size_limit = 10485760",
				"queue_run_delay = 10s", "minimal_backoff_time = 10s", "maximal_backoff_time = 10s",
				"delay_warning_time = 60s", "maximal_queue_lifetime = 300s", "bounce_queue_lifetime = 300s",
				"smtpd_tls_cert_file = /etc/mailflow/tls/cert.pem",
				"smtp_sasl_auth_enable = yes",
				"maillog_file = /dev/stdout",
			},
			"/etc/postfix/master.cf": {
				"587      inet  n       -       n       -       -       smtpd\n  -o syslog_name=postfix/port587\n  -o smtpd_tls_security_level=may\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_tls_auth_only=yes\n",
				"  -o smtpd_relay_restrictions=$mailflow_relay_checks_2587",
				"postlog   unix-dgram n  -       n       -       1       postlogd",
			},
			"/etc/postfix/transport": {
				"contoso.test smtp:[172.28.77.200]:25",
				"fabrikam.test smtp:[172.28.77.200]:25",
				"partner.test smtp:[172.28.77.200]:2526",
				"secure.test smtp:[172.28.77.201]:587, [relay.contoso.test]",
				"mx.test smtp:\n",
				"alice@contoso.test lmtp:unix:/run/dovecot/lmtp",
			},
			"/etc/postfix/relay_recipients": {"alice@contoso.test OK", "bob@contoso.test OK", "@fabrikam.test OK", "@partner.test OK"},
			"/etc/postfix/tls_policy":       {"[172.28.77.201]:587 encrypt", "[relay.contoso.test] encrypt"},
			"/etc/postfix/sasl_passwd":      {"[172.28.77.201]:587 relayuser:p^w:x"},
			"/etc/mailflow/users":           {"carol\tcontoso.test\ts3cret pw"},
		}},
		{"exim", map[string][]string{
			StartScript: {
				"'172.28.77.53' >/etc/resolv.conf",
				"exec exim4 -bdf -q10s",
			},
			"/etc/exim4/exim4.conf": {
				"primary_hostname = edge1.contoso.test",
				"domainlist authoritative_domains = <; contoso.test",
				"domainlist internal_relay_domains = <; fabrikam.test",
				"domainlist external_relay_domains = <; partner.test",
				"hostlist relay_from_hosts = <; 127.0.0.1 ; 172.28.77.128/28",
				"daemon_smtp_ports = 25 : 587 : 2587",
				"received_headers_max = 30",
				"delay_warning = 60s",
				"timeout_frozen_after = 5m",
				"tls_advertise_hosts = ${if inlist{$received_port}{25:587}{*}{}}",
				"auth_advertise_hosts = ${if and{ {inlist{$received_port}{587}} {or{ {def:tls_in_cipher} {!inlist{$received_port}{25:587}} }} }{*}{}}",
				"dnslists = <; bl.mailflow.test",
				"deny    message = relay not permitted",
				"  accept  condition = ${if ={$received_port}{2587}}\n          hosts = <; 172.28.77.1/32",
				"  deny    condition = ${if ={$received_port}{2587}}\n          ! hosts = <; 172.28.77.1/32",
				"route_list = * 172.28.77.200::2526",
				"route_list = * 172.28.77.201::587 : relay.contoso.test",
				"route2:\n  driver = manualroute",
				"route3:\n  driver = dnslookup",
				"domains = ! +authoritative_domains : ! +internal_relay_domains : *",
				"smtp_route2:\n  driver = smtp\n  hosts_require_tls = *\n  hosts_require_auth = *",
				"*   *   F,300s,10s",
			},
			"/etc/exim4/mailflow/recipients":  {`"alice@contoso.test"`, `"bob@contoso.test"`},
			"/etc/exim4/mailflow/passwd":      {`"carol@contoso.test": s3cret pw`},
			"/etc/exim4/mailflow/client-user": {`"172.28.77.201": relayuser`, `"relay.contoso.test": relayuser`},
			"/etc/exim4/mailflow/client-pass": {`"172.28.77.201": p^^w:x`},
		}},
		{"opensmtpd", map[string][]string{
			StartScript: {
				"'172.28.77.53' >/etc/resolv.conf",
				"smtpctl encrypt",
				"exec smtpd -d -f /etc/smtpd.conf",
			},
			"/etc/smtpd.conf": {
				`pki edge1.contoso.test cert "/etc/mailflow/tls/cert.pem"`,
				"queue ttl 300s",
				"bounce warn-interval 60s",
				"smtp max-message-size 10485760",
				"listen on 0.0.0.0 port 25 hostname edge1.contoso.test tls pki edge1.contoso.test tag port25",
				"listen on 0.0.0.0 port 587 hostname edge1.contoso.test tls pki edge1.contoso.test auth <users> tag port587",
				`action "internal" relay host smtp://172.28.77.200:25 helo edge1.contoso.test`,
				`action "route2" relay host smtp+tls://route2@172.28.77.201:587 auth <secrets> tls helo edge1.contoso.test`,
				`action "route3" relay helo edge1.contoso.test`,
				`match from any for rcpt-to <recipients> action "internal"`,
				`match from any for domain "contoso.test" reject`,
				`match from any for domain "fabrikam.test" action "internal"`,
				`match from any for domain "partner.test" action "route1"`,
				`match from src <relaynets> for domain { "secure.test" } action "route2"`,
				`match from auth for any action "route4"`,
				`match from src <relay_port2587> tag port2587 for any action "route4"`,
			},
			"/etc/mailflow/opensmtpd/recipients":  {"alice@contoso.test\nbob@contoso.test"},
			"/etc/mailflow/opensmtpd/relaynets":   {"127.0.0.1\n172.28.77.128/28"},
			"/etc/mailflow/opensmtpd/users.plain": {"carol@contoso.test\ts3cret pw"},
			"/etc/mailflow/opensmtpd/secrets":     {"route2 relayuser:p^w:x"},
		}},
		{"chasquid", map[string][]string{
			StartScript: {
				"'172.28.77.53' >/etc/resolv.conf",
				`users: { key: "alice" value: {} }`,
				`users: { key: "carol" value: { plain: { password: "s3cret pw" } } }`,
				`mkdir -p "$c/domains/fabrikam.test"`,
				`mkdir -p "$c/domains/internal-relay.mailflow.invalid"`,
				`cp '/etc/mailflow/tls/cert.pem' "$c/certs/edge1.contoso.test/fullchain.pem"`,
				`exec chasquid -config_dir="$c"`,
			},
			"/etc/chasquid/chasquid.conf": {
				`hostname: "edge1.contoso.test"`,
				`smtp_address: ":25"`,
				`submission_address: ":587"`,
				`smtp_address: ":2587"`,
				"max_data_size_mb: 10",
				`drop_characters: ""`,
				`mail_delivery_agent_bin: "/etc/mailflow/chasquid/deliver"`,
			},
			"/etc/mailflow/chasquid/deliver": {
				"exec msmtp --host='172.28.77.200' --port=25 --domain='edge1.contoso.test'",
				`-f "$from" -- "$to"`,
			},
			"/etc/mailflow/chasquid/alias-resolve": {
				`*@fabrikam.test) echo "${1%@*}=fabrikam.test@internal-relay.mailflow.invalid" ;;`,
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			p, err := Load(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			files, err := p.Render(sample())
			if err != nil {
				t.Fatal(err)
			}
			byPath := map[string]File{}
			var all bytes.Buffer
			for _, f := range files {
				if _, dup := byPath[f.Path]; dup {
					t.Errorf("%s rendered twice", f.Path)
				}
				byPath[f.Path] = f
				fmt.Fprintf(&all, "==> %s (%04o) <==\n%s\n", f.Path, f.Mode, f.Content)
			}
			if f, ok := byPath[StartScript]; !ok || f.Mode&0o111 == 0 || !bytes.HasPrefix(f.Content, []byte("#!/bin/sh\n")) {
				t.Errorf("no executable start script at %s", StartScript)
			}
			for path, lines := range tt.want {
				f, ok := byPath[path]
				if !ok {
					t.Errorf("%s not rendered", path)
					continue
				}
				for _, l := range lines {
					if !strings.Contains(string(f.Content), l) {
						t.Errorf("%s lacks %q:\n%s", path, l, f.Content)
					}
				}
			}
			golden := filepath.Join("testdata", tt.profile+".golden")
			if *update {
				if err := os.WriteFile(golden, all.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(all.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update after checking the change)", golden)
			}
		})
	}
}

// TestRenderMailboxes: with Mailboxes every profile starts Dovecot before the MTA
// and gets its configuration, and Dovecot's users file has each mailbox once.
func TestRenderMailboxes(t *testing.T) {
	for _, n := range Names() {
		p, _ := Load(n)
		files, err := p.Render(sample())
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		byPath := map[string]string{}
		for _, f := range files {
			byPath[f.Path] = string(f.Content)
		}
		start := byPath[StartScript]
		if i, j := strings.Index(start, "\ndovecot\n"), strings.LastIndex(start, "\nexec "); i < 0 || i > j {
			t.Errorf("%s: the start script does not start Dovecot before the MTA:\n%s", n, start)
		}
		if !strings.Contains(byPath["/etc/dovecot/dovecot.conf"], "special_use = \\Sent") {
			t.Errorf("%s: no Dovecot configuration with a \\Sent folder", n)
		}
		want := "alice@contoso.test:{PLAIN}alice-secret::::::userdb_quota_rule=*:storage=4000B\nbob@contoso.test:{CRYPT}*::::::\n"
		if got := byPath["/etc/dovecot/users"]; got != want {
			t.Errorf("%s: Dovecot users\n%q, want\n%q", n, got, want)
		}
		d := sample()
		d.Mailboxes = nil
		files, _ = p.Render(d)
		for _, f := range files {
			if strings.HasPrefix(f.Path, "/etc/dovecot/") || strings.Contains(string(f.Content), "\ndovecot\n") || strings.Contains(string(f.Content), "lmtp") && n != "postfix" {
				t.Errorf("%s: Dovecot in %s without mailboxes", n, f.Path)
			}
		}
	}
}

// TestRenderMinimal renders a scenario with only the required fields: MTA defaults
// for the timers, MX routing, no TLS and no AUTH.
func TestRenderMinimal(t *testing.T) {
	d := Data{
		Hostname:        "mx.fabrikam.test",
		AcceptedDomains: []Domain{{Name: "fabrikam.test", Type: Authoritative}},
		Recipients:      []string{"a@fabrikam.test"},
		InternalHost:    "10.0.0.5",
		Routes:          []Route{{Domains: []string{"*"}}},
	}
	for _, n := range Names() {
		p, _ := Load(n)
		files, err := p.Render(d)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		all := ""
		for _, f := range files {
			all += string(f.Content)
		}
		for _, bad := range []string{"<no value>", "queue_run_delay", "delay_warning", "queue ttl", "tls pki", "auth-optional"} {
			if strings.Contains(all, bad) {
				t.Errorf("%s: output contains %q", n, bad)
			}
		}
		if !strings.Contains(all, "nameserver %s") || !strings.Contains(all, "'127.0.0.1'") {
			t.Errorf("%s: without DNS the resolver must point at 127.0.0.1", n)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	mod := func(f func(*Data)) Data { d := sample(); f(&d); return d }
	cases := map[string]Data{
		"no hostname":          mod(func(d *Data) { d.Hostname = "" }),
		"bad domain type":      mod(func(d *Data) { d.AcceptedDomains[0].Type = "local" }),
		"no internal host":     mod(func(d *Data) { d.InternalHost = "" }),
		"bad smart host":       mod(func(d *Data) { d.Routes[0].SmartHosts = []string{"[1.2.3.4"} }),
		"bad smart host port":  mod(func(d *Data) { d.Routes[0].SmartHosts = []string{"1.2.3.4:x"} }),
		"credentials, no host": mod(func(d *Data) { d.Routes[2].Username = "u" }),
		"TLS without cert":     mod(func(d *Data) { d.TLSCert = "" }),
		"bad port":             mod(func(d *Data) { d.Listeners[1].Port = 0 }),
		"bad user":             mod(func(d *Data) { d.Users[0].Name = "a b" }),
		"bad DNS":              mod(func(d *Data) { d.DNS = "dns.test" }),
		"bad mailbox":          mod(func(d *Data) { d.Mailboxes[0].Address = "alice" }),
		"mailbox elsewhere":    mod(func(d *Data) { d.Mailboxes[0].Address = "alice@partner.test" }),
		"mailbox password":     mod(func(d *Data) { d.Mailboxes[0].Password = "a:b" }),
		"bad clamd":            mod(func(d *Data) { d.Clamd = "clamd.test" }),
		"bad antivirus action": mod(func(d *Data) { d.AntivirusAction = "quarantine" }),
		"bad SPF action":       mod(func(d *Data) { d.SPF = "tempfail" }),
	}
	for name, d := range cases {
		for _, n := range Names() {
			p, _ := Load(n)
			if _, err := p.Render(d); err == nil {
				t.Errorf("%s/%s: no error", n, name)
			}
		}
	}
}

func TestParseSmartHost(t *testing.T) {
	tests := []struct {
		in   string
		want smartHost
	}{
		{"relay.contoso.test", smartHost{Host: "relay.contoso.test"}},
		{"relay.contoso.test:587", smartHost{Host: "relay.contoso.test", Port: 587}},
		{"1.2.3.4", smartHost{Host: "1.2.3.4", IP: true}},
		{"[1.2.3.4]", smartHost{Host: "1.2.3.4", IP: true}},
		{"[1.2.3.4]:2525", smartHost{Host: "1.2.3.4", IP: true, Port: 2525}},
		{"1.2.3.4:2525", smartHost{Host: "1.2.3.4", IP: true, Port: 2525}},
	}
	for _, tt := range tests {
		got, err := parseSmartHost(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSmartHost(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "[1.2.3.4", "[1.2.3.4]x", "h:0", "h:70000", "a b"} {
		if _, err := parseSmartHost(bad); err == nil {
			t.Errorf("parseSmartHost(%q) succeeded", bad)
		}
	}
}
