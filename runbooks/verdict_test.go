package runbooks

import (
	"path/filepath"
	"testing"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
)

// What a runbook's end verdict must be for it to succeed.
func TestVerdictOutcome(t *testing.T) {
	one := func(site string) checks.Verdict {
		return checks.Combine([]checks.LayerVerdict{{Layer: "services", State: checks.ServeOne, Site: site}})
	}
	partly := func(site string) checks.Verdict {
		return checks.Combine([]checks.LayerVerdict{{Layer: "services", State: checks.ServeOne, Site: site}, {Layer: "haproxy", State: checks.ServeNone}})
	}
	split := checks.Combine([]checks.LayerVerdict{{Layer: "services", State: checks.ServeOne, Site: "A"}, {Layer: "haproxy", State: checks.ServeOne, Site: "B"}})
	unknown := checks.Combine([]checks.LayerVerdict{{Layer: "services", State: checks.ServeUnknown}})
	none := checks.Combine([]checks.LayerVerdict{{Layer: "services", State: checks.ServeNone}})
	for _, c := range []struct {
		name   string
		effect string
		v      checks.Verdict
		want   event.Outcome
	}{
		{"takeover B, B serves", EffectActivate, one("B"), event.OK},
		{"takeover B, B serves partly", EffectActivate, partly("B"), event.Failed},
		{"takeover B, split", EffectActivate, split, event.Failed},
		{"takeover B, unknown", EffectActivate, unknown, event.Unknown},
		{"renounce B, A serves", EffectDeactivate, one("A"), event.OK},
		{"renounce B, nobody serves", EffectDeactivate, none, event.OK},
		{"renounce B, B still serves partly", EffectDeactivate, partly("B"), event.Failed},
		{"renounce B, A serves partly", EffectDeactivate, partly("A"), event.OK},
		{"renounce B, split with B", EffectDeactivate, split, event.Failed},
		{"renounce B, unknown", EffectDeactivate, unknown, event.Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &Plan{Runbook: &Runbook{Name: "x", Effect: c.effect}, Site: "B"}
			if got, want := verdictOutcome(p, c.v); got != c.want {
				t.Errorf("%s (%s): %s, want %s", c.v.State, want, got, c.want)
			}
		})
	}
}

// Compiling a plan reads no secret: the MongoDB credentials file need not
// exist when the plan is compiled.
func TestMongoCredentialsAreReadAtRunNotAtCompile(t *testing.T) {
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mongo-creds")
	inv.MongoDB.Credentials = &inventory.Credentials{File: file}
	cat, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	p, err := cat.Compile("takeover", inv, "B")
	if err != nil {
		t.Fatalf("compile with the credentials file not there yet: %v", err)
	}
	found := false
	for _, tk := range p.Tasks() {
		found = found || tk.Layer == "mongodb"
	}
	if !found {
		t.Fatal("no mongodb task in the takeover plan")
	}
	// the driver reads them when first used: checks/mongodb
	// TestStepReadsCredentialsWhenFirstUsed
}
