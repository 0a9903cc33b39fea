package run

import (
	"context"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

func TestNewCmdRunbookFlags(t *testing.T) {
	cases := []struct {
		name    string
		tty     bool
		args    []string
		want    Options
		wantErr string
	}{
		{"yes", false, []string{"--site", "B", "--yes"}, Options{Runbook: "takeover", Site: "B", Yes: true}, ""},
		{"tty may prompt", true, []string{"-s", "A"}, Options{Runbook: "takeover", Site: "A"}, ""},
		{"no site", false, []string{"--yes"}, Options{}, "--site is required"},
		{"no tty no yes", false, []string{"--site", "B"}, Options{}, "--yes required when not running interactively"},
		{"force needs reason", false, []string{"--site", "B", "--yes", "--force"}, Options{}, "--force needs --reason"},
		{"force with reason", false, []string{"--site", "B", "--yes", "--force", "--reason", "A is fenced"}, Options{Runbook: "takeover", Site: "B", Yes: true, Force: true, Reason: "A is fenced"}, ""},
		{"positional args refused", false, []string{"B"}, Options{}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			io, _, _, _ := cmdutil.Test()
			io.SetTTY(tc.tty, tc.tty)
			f := &cmdutil.Factory{IO: io, Globals: &cmdutil.Globals{}}
			var got *Options
			cmd := NewCmdRunbook(f, "takeover", func(_ context.Context, o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Out)
			cmd.SetErr(io.ErrOut)
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if got != nil {
					t.Fatal("runF called despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Runbook != tc.want.Runbook || got.Site != tc.want.Site || got.Yes != tc.want.Yes || got.Force != tc.want.Force || got.Reason != tc.want.Reason {
				t.Errorf("options %+v, want %+v", *got, tc.want)
			}
		})
	}
}
