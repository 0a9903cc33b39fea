// Package packaging holds the nfpm configuration of the .deb and .rpm that
// scripts/build-deb.sh builds; its test keeps it in step with goreleaser.yaml.
package packaging

import (
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

type contents []struct {
	Src string `yaml:"src"`
	Dst string `yaml:"dst"`
}

// TestPackagesShipTheSameFiles: the packages goreleaser builds and the one
// CI builds with nfpm ship the same files (besides the binary, which
// goreleaser adds by itself), and both ship completions for bash, zsh and
// fish and the man pages.
func TestPackagesShipTheSameFiles(t *testing.T) {
	var gr struct {
		NFPMs []struct {
			Formats  []string `yaml:"formats"`
			Contents contents `yaml:"contents"`
			Bindir   string   `yaml:"bindir"`
		} `yaml:"nfpms"`
	}
	var nf struct {
		Contents contents `yaml:"contents"`
	}
	read := func(path string, v any) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	read("../goreleaser.yaml", &gr)
	read("nfpm.yaml", &nf)
	if len(gr.NFPMs) != 1 || !slices.Contains(gr.NFPMs[0].Formats, "deb") || !slices.Contains(gr.NFPMs[0].Formats, "rpm") || gr.NFPMs[0].Bindir != "/usr/bin" {
		t.Fatalf("goreleaser.yaml nfpms: %+v, want one entry with deb and rpm into /usr/bin", gr.NFPMs)
	}
	pairs := func(c contents) []string {
		var out []string
		for _, e := range c {
			out = append(out, e.Src+" -> "+e.Dst)
		}
		slices.Sort(out)
		return out
	}
	g := pairs(gr.NFPMs[0].Contents)
	n := pairs(slices.DeleteFunc(nf.Contents, func(e struct {
		Src string `yaml:"src"`
		Dst string `yaml:"dst"`
	}) bool {
		return e.Dst == "/usr/bin/sitectl"
	}))
	if !slices.Equal(g, n) {
		t.Errorf("goreleaser.yaml ships\n%v\npackaging/nfpm.yaml ships\n%v", g, n)
	}
	for _, want := range []string{"/usr/share/bash-completion/completions/sitectl", "/usr/share/zsh/vendor-completions/_sitectl", "/usr/share/fish/vendor_completions.d/sitectl.fish", "/usr/share/man/man1/"} {
		found := false
		for _, e := range gr.NFPMs[0].Contents {
			found = found || e.Dst == want
		}
		if !found {
			t.Errorf("the packages do not ship %s", want)
		}
	}
}
