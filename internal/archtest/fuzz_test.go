package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every fuzz target runs in the suite: scripts/test.sh names each one
// (`fuzz ./pkg FuzzName`), so a new parser's fuzzer is not left out of CI.
func TestEveryFuzzerRunsInTheSuite(t *testing.T) {
	root := filepath.Join("..", "..")
	script, err := os.ReadFile(filepath.Join(root, "scripts", "test.sh"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^fuzz (\./\S+) (Fuzz\w+)\s*$`).FindAllStringSubmatch(string(script), -1) {
		listed[m[1]+" "+m[2]] = true
	}
	def := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	found := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "third_party" || d.Name() == ".git" || strings.HasPrefix(d.Name(), ".lab")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			found++
			if key := "./" + filepath.ToSlash(rel) + " " + m[1]; !listed[key] {
				t.Errorf("%s (%s) is not run by scripts/test.sh: add the line `fuzz %s`", m[1], p, key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Fatalf("only %d fuzz targets found: the walk no longer sees the tree", found)
	}
}
