package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns
// has a position with a line, and that what it accepts is consistent.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.yaml")
	seeds = append(seeds, "example.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data)
		if err != nil {
			if inv != nil {
				t.Fatal("inventory returned with errors")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
			}
			for i, e := range errs {
				if e == nil || e.Pos.File != "fuzz.yaml" || e.Pos.Line <= 0 || e.Pos.Column < 0 || e.Msg == "" {
					t.Fatalf("error without a position: %#v", e)
				}
				if i > 0 && (errs[i-1].Pos.Line > e.Pos.Line || errs[i-1].Pos.Line == e.Pos.Line && errs[i-1].Pos.Column > e.Pos.Column) {
					t.Fatalf("errors not sorted: %v", err)
				}
			}
			_ = err.Error()
			return
		}
		if inv == nil || len(inv.Sites) != 2 || inv.PrimarySite() == nil || inv.SecondarySite() == nil {
			t.Fatalf("accepted an inventory without a primary and a secondary site: %+v", inv)
		}
		if inv.Defaults.SSH.Port == 0 || inv.Defaults.CommandTimeout == 0 || inv.Lock.Path == "" {
			t.Fatal("defaults not applied")
		}
		for _, s := range inv.Sites {
			if inv.Other(s.Name) == nil || inv.Other(s.Name) == s {
				t.Fatalf("Other(%q)", s.Name)
			}
			for _, svc := range s.Services {
				for _, h := range svc.OnHosts() {
					if s.Host(h) == nil {
						t.Fatalf("service %s on host %s outside its site", svc.Name, h)
					}
				}
			}
		}
		if err := inv.Validate(); err != nil {
			t.Fatalf("accepted inventory fails Validate: %v", err)
		}
	})
}
