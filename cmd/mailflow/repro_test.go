package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capture runs f with stdout redirected and returns what it printed.
func capture(t *testing.T, f func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	code := f()
	w.Close()
	os.Stdout = old
	return <-done, code
}

func TestRepro(t *testing.T) {
	diamond, err := os.ReadFile("../../scenarios/diamond.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Amsterdam-Zurich dearer: the tie is gone and the path flips to Brussels.
	flipped := strings.Replace(string(diamond), "{sites: [amsterdam, zurich], cost: 10}", "{sites: [amsterdam, zurich], cost: 11}", 1)
	tests := []struct {
		name     string
		file     string
		code     int
		contains []string
	}{
		{"tie broken by site name, expect holds", "../../scenarios/diamond.yaml", 0,
			[]string{"path zoe@contoso.test: EDGE1 -> HUB-LON -> HUB-AMS -> HUB-ZRH -> MBX-ZRH:zoe", "decided by lowest site name nearest the destination", "expect path: ok"}},
		{"one cost changed: the other path, the rule that decides, expect fails", write("flipped.yaml", flipped), 1,
			[]string{"path zoe@contoso.test: EDGE1 -> HUB-LON -> HUB-BRU -> HUB-ZRH -> MBX-ZRH:zoe", "decided by least cost",
				"expect path: MISMATCH", "expected: EDGE1 -> HUB-LON -> HUB-AMS -> HUB-ZRH -> MBX-ZRH:zoe", "actual:   EDGE1 -> HUB-LON -> HUB-BRU -> HUB-ZRH -> MBX-ZRH:zoe"}},
		{"hub site on the path", "../../scenarios/three-sites-hub.yaml", 0,
			[]string{"path bob@contoso.test: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER:bob", "relay via paris -> berlin"}},
		{"send connectors: out through the chosen connector's source and smart host", "../../scenarios/connectors.yaml", 0,
			[]string{"path sales@litware.test: EDGE1 -> HUB-LON -> HUB-PAR -> paris.isp.test (Litware Paris)", "lowest aggregate cost 6"}},
		{"forwarding", "../../scenarios/tracking.yaml", 0,
			[]string{"path carol@contoso.test: EDGE1 -> HUB-LON -> MBX-LON:carol", "REDIRECT"}},
		{"broken scenario", write("broken.yaml", "org:\n  sitez: []\n"), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := capture(t, func() int { return runRepro([]string{tt.file}) })
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q\n%s", c, out)
				}
			}
		})
	}
}

func TestReproSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "paths.svg")
	if _, code := capture(t, func() int { return runRepro([]string{"../../scenarios/three-sites-hub.yaml", "--svg", svg}) }); code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", ">paris</text>", ">berlin</text>", "<polyline", "london -&gt; paris -&gt; berlin"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
