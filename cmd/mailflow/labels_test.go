package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/spec"
)

// clauseRef finds clause IDs given to f.Clause(...) or Label(...) in suite sources.
var clauseRef = regexp.MustCompile(`(?:Clause|Label)\(([^)]*)\)`)
var quotedID = regexp.MustCompile(`"([A-Z]+-\d{3})"`)

// TestSuiteLabelsAreInCatalog fails when a spec names a clause the catalog lacks, so a
// typo cannot leave a clause MISSING while its spec runs under a wrong name.
func TestSuiteLabelsAreInCatalog(t *testing.T) {
	seen := 0
	err := filepath.WalkDir("../../suites", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, call := range clauseRef.FindAllStringSubmatch(string(src), -1) {
			for _, id := range quotedID.FindAllStringSubmatch(call[1], -1) {
				seen++
				if _, ok := spec.Lookup(id[1]); !ok {
					t.Errorf("%s: label %s is not a clause of the catalog", path, id[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("found no clause labels in suites/: the scan is broken")
	}
}
