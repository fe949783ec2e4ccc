package profiles

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// Profile says which image an MTA runs in, how to start it and what it cannot be
// configured for. It is read from the profile directory's profile.yaml (Manifest).
type Profile struct {
	Name string // "postfix": the directory's name
	// Image is the argument for containers/mta/build-image.sh: the name of a profile
	// under profiles/, or the absolute path of a profile directory.
	Image string
	Start []string // the container command; runs the MTA in the foreground, logging to stdout/stderr
	Port  int      // SMTP port to wait for (25)
	// HopLimit is the Received-header limit the MTA enforces whatever Data.HopLimit
	// says, for an MTA whose limit is compiled in; 0 when the profile configures it.
	HopLimit int
	// FixedRetry says why the interval between attempts is not a configured one, on an
	// MTA whose back-off is built in ("" otherwise).
	FixedRetry string
	// Timers are the queue timers the profile gives the MTA: the shortest its
	// configuration takes that it still acts on in time, since specs wait them out in
	// real time. Zero fields take the target's defaults.
	Timers Timers
	// InactivityTimeout is how long the MTA waits on a silent client whatever
	// Data.InactivityTimeout says, for an MTA whose timeout is built in; 0 when the
	// profile configures it.
	InactivityTimeout time.Duration
	// MessageSizeUnit is the unit, in bytes, the MTA takes its message size limit in
	// (chasquid's max_data_size_mb: 1 MiB), when it is not the byte: the profile
	// rounds Data.MaxMessageSize up to it, and specs judge that limit. 0: bytes.
	MessageSizeUnit int64
	// QueueLength is a command run in the container that prints how many messages the
	// MTA holds (nil: the target cannot tell).
	QueueLength []string
	// Lacks says, per feature (FeatureDNSBL, ...), why the MTA as packaged cannot be
	// configured for it; the clauses that need the feature are N/A there, with that
	// reason.
	Lacks map[string]string

	fsys  fs.FS // the profile directory
	files []FileSpec
}

// Features a profile may lack.
const (
	// FeatureDNSBL is checking clients against DNS block lists (FILTER-001, FILTER-002,
	// FILTER-003, FILTER-004, FILTER-008).
	FeatureDNSBL = "dnsbl"
	// FeatureSPF is checking the sender's SPF record and acting on it (FILTER-015).
	FeatureSPF = "spf"
	// FeatureAntivirus is scanning messages with ClamAV's daemon and acting on what
	// it finds (FILTER-009, FILTER-010).
	FeatureAntivirus = "antivirus"
	// FeatureAntivirusStrip is replacing an infected attachment with a notice and
	// delivering the rest (FILTER-009, FILTER-010), beyond refusing or deleting the
	// whole message.
	FeatureAntivirusStrip = "antivirus-strip"
	// FeatureAntivirusNotify is telling the envelope sender, from the null sender,
	// that malware was found and deleted, when configured to (FILTER-010).
	FeatureAntivirusNotify = "antivirus-notify"
	// FeatureContentFilter is scoring messages with SpamAssassin's spamd and acting on
	// the SCL (FILTER-013).
	FeatureContentFilter = "content filter"
	// FeatureRelayByAddress is letting clients relay by their address, without AUTH:
	// a receive connector with accept_any_recipient and remote_ip_ranges (RELAY-008,
	// and every spec that relays out through the organisation's "From Org"
	// connector: most of the smart-host, queue, DSN and DNS suites).
	FeatureRelayByAddress = "relay-by-address"
	// FeatureSmartHost is sending a send connector's mail through its smart hosts
	// rather than to the destination's MX (SMART-001, RELAY-005, RELAY-008, ...).
	FeatureSmartHost = "smarthost"
)

// features are the keys a profile's lacks may use.
var features = []string{FeatureDNSBL, FeatureSPF, FeatureAntivirus, FeatureAntivirusStrip, FeatureAntivirusNotify, FeatureContentFilter, FeatureRelayByAddress, FeatureSmartHost}

// Timers are an MTA's queue timers as a profile sets them.
type Timers struct {
	Retry        time.Duration `yaml:"retry"`
	DelayWarning time.Duration `yaml:"delay_warning"`
	Expiry       time.Duration `yaml:"expiry"`
}

// StartScript is where every profile's start script is placed in the container,
// and the container command unless the manifest says otherwise.
const StartScript = "/etc/mailflow/start.sh"

// ManifestFile is the file of a profile directory that describes the profile.
const ManifestFile = "profile.yaml"

// Manifest is a profile directory's profile.yaml. profiles/README.md documents it.
type Manifest struct {
	// Start is the container command (default: /bin/sh /etc/mailflow/start.sh).
	Start []string `yaml:"start"`
	// Port is the SMTP port the target waits on for a greeting (default 25).
	Port              int               `yaml:"port"`
	HopLimit          int               `yaml:"hop_limit"`
	FixedRetry        string            `yaml:"fixed_retry"`
	Timers            Timers            `yaml:"timers"`
	InactivityTimeout time.Duration     `yaml:"inactivity_timeout"`
	MessageSizeUnit   int64             `yaml:"message_size_unit"`
	QueueLength       string            `yaml:"queue_length"` // a /bin/sh command line
	Lacks             map[string]string `yaml:"lacks"`
	Files             []FileSpec        `yaml:"files"`
}

// FileSpec is a template of the profile directory and where its output goes in
// the container.
type FileSpec struct {
	Template string `yaml:"template"` // file name in the profile directory
	Path     string `yaml:"path"`     // absolute path in the container
	Mode     int64  `yaml:"mode"`     // e.g. 0644
}

// builtin holds the profiles shipped in this directory: every subdirectory with a
// profile.yaml.
//
//go:embed */profile.yaml */*.tmpl
var builtin embed.FS

// Names lists the built-in profiles, sorted.
func Names() []string {
	dirs, _ := fs.Glob(builtin, "*/"+ManifestFile)
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		names = append(names, path.Dir(d))
	}
	sort.Strings(names)
	return names
}

// IsDir says whether a profile reference names a directory rather than a built-in
// profile: it has a path separator in it ("./mine", "/srv/profiles/sendmail").
func IsDir(ref string) bool {
	return strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, filepath.Separator)
}

// Load returns a profile: a built-in one by name ("postfix"), or the profile in a
// directory when ref has a path separator in it (IsDir).
func Load(ref string) (*Profile, error) {
	if IsDir(ref) {
		dir, err := filepath.Abs(ref)
		if err != nil {
			return nil, fmt.Errorf("profiles: %w", err)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("profiles: profile directory %s not found", ref)
		}
		p, err := load(os.DirFS(dir), filepath.Base(dir), dir)
		if err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", dir, err)
		}
		return p, nil
	}
	sub, err := fs.Sub(builtin, ref)
	if err != nil || !fs.ValidPath(ref) {
		return nil, fmt.Errorf("profiles: unknown profile %q (have %s, or a directory: ./NAME)", ref, strings.Join(Names(), ", "))
	}
	if _, err := fs.Stat(sub, ManifestFile); err != nil {
		return nil, fmt.Errorf("profiles: unknown profile %q (have %s, or a directory: ./NAME)", ref, strings.Join(Names(), ", "))
	}
	p, err := load(sub, ref, ref)
	if err != nil {
		return nil, fmt.Errorf("profiles: %s: %w", ref, err)
	}
	return p, nil
}

// load reads and checks the manifest of the profile in fsys.
func load(fsys fs.FS, name, image string) (*Profile, error) {
	b, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return nil, err
	}
	var m Manifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	p := &Profile{
		Name: name, Image: image, Start: m.Start, Port: m.Port,
		HopLimit: m.HopLimit, FixedRetry: strings.TrimSpace(m.FixedRetry), Timers: m.Timers,
		InactivityTimeout: m.InactivityTimeout, MessageSizeUnit: m.MessageSizeUnit, Lacks: map[string]string{},
		fsys: fsys, files: m.Files,
	}
	if len(p.Start) == 0 {
		p.Start = []string{"/bin/sh", StartScript}
	}
	if p.Port == 0 {
		p.Port = 25
	}
	if q := strings.TrimSpace(m.QueueLength); q != "" {
		p.QueueLength = []string{"/bin/sh", "-c", q}
	}
	var errs []error
	if p.Port < 0 || p.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", p.Port))
	}
	if p.HopLimit < 0 || p.InactivityTimeout < 0 || p.MessageSizeUnit < 0 || p.Timers.Retry < 0 || p.Timers.DelayWarning < 0 || p.Timers.Expiry < 0 {
		errs = append(errs, errors.New("hop_limit, inactivity_timeout, message_size_unit and timers cannot be negative"))
	}
	for f, why := range m.Lacks {
		why = strings.TrimSpace(why)
		switch {
		case !contains(features, f):
			errs = append(errs, fmt.Errorf("lacks: unknown feature %q (known: %s)", f, strings.Join(features, ", ")))
		case why == "":
			errs = append(errs, fmt.Errorf("lacks: %s: say why the MTA cannot be configured for it", f))
		default:
			p.Lacks[f] = why
		}
	}
	if len(m.Files) == 0 {
		errs = append(errs, errors.New("files: none listed"))
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		switch {
		case !fs.ValidPath(f.Template) || strings.Contains(f.Template, "/"):
			errs = append(errs, fmt.Errorf("files: template %q: a file name of the profile directory", f.Template))
		case !path.IsAbs(f.Path):
			errs = append(errs, fmt.Errorf("files: %s: path %q is not absolute", f.Template, f.Path))
		case seen[f.Path]:
			errs = append(errs, fmt.Errorf("files: %s rendered twice", f.Path))
		case f.Mode <= 0 || f.Mode > 0o7777:
			errs = append(errs, fmt.Errorf("files: %s: mode %#o (write it in octal, e.g. 0644)", f.Template, f.Mode))
		default:
			if _, err := fs.Stat(fsys, f.Template); err != nil {
				errs = append(errs, fmt.Errorf("files: template %s not found", f.Template))
			}
		}
		seen[f.Path] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Render renders the profile's templates from d. The result is ordered as the
// manifest lists its files.
func (p *Profile) Render(d Data) ([]File, error) {
	if p.fsys == nil {
		return nil, fmt.Errorf("profiles: %s: not loaded with Load", p.Name)
	}
	v, err := newView(d)
	if err != nil {
		return nil, fmt.Errorf("profiles: %s: %w", p.Name, err)
	}
	files := make([]File, 0, len(p.files))
	for _, f := range p.files {
		src, err := fs.ReadFile(p.fsys, f.Template)
		if err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", p.Name, err)
		}
		name := path.Join(p.Name, f.Template)
		t, err := template.New(f.Template).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", name, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", name, err)
		}
		files = append(files, File{Path: f.Path, Mode: f.Mode, Content: b.Bytes()})
	}
	if len(v.Mailboxes) > 0 {
		for _, f := range dovecotFiles {
			b, err := render(builtin, path.Join("dovecot", f.Template), v)
			if err != nil {
				return nil, fmt.Errorf("profiles: %w", err)
			}
			files = append(files, File{Path: f.Path, Mode: f.Mode, Content: b})
		}
	}
	return files, nil
}

// dovecotFiles are the configuration of the Dovecot every profile's MTA delivers
// Data.Mailboxes to: the same whatever the MTA, so kept once, in dovecot/.
var dovecotFiles = []FileSpec{
	{Template: "dovecot.conf.tmpl", Path: "/etc/dovecot/dovecot.conf", Mode: 0o644},
	{Template: "users.tmpl", Path: "/etc/dovecot/users", Mode: 0o644},
}

// render executes one template of fsys on v.
func render(fsys fs.FS, name string, v *view) ([]byte, error) {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(path.Base(name)).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b.Bytes(), nil
}
