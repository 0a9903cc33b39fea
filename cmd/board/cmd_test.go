package board

import (
	"context"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

func TestBoardRefusesWithoutATerminal(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	f := &cmdutil.Factory{IO: ios, Globals: &cmdutil.Globals{Output: "text"}}
	called := false
	cmd := NewCmdBoard(f, func(context.Context, *Options) error { called = true; return nil })
	cmd.SetArgs(nil)
	err := cmd.Execute()
	if err == nil || called || !strings.Contains(err.Error(), "sitectl status --watch") {
		t.Fatalf("err = %v, called = %v", err, called)
	}
	ios.SetTTY(true, true)
	cmd = NewCmdBoard(f, func(_ context.Context, o *Options) error {
		called = true
		if o.Interval.String() != "500ms" {
			t.Errorf("interval = %s", o.Interval)
		}
		return nil
	})
	cmd.SetArgs([]string{"--interval", "500ms"})
	if err := cmd.Execute(); err != nil || !called {
		t.Fatalf("err = %v, called = %v", err, called)
	}
}
