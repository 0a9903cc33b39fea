package runbooks

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/mongo"
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

// The MongoDB wait says when the primary it found was elected, so that a
// run's critical path can count the election from the run's start.
func TestMongoObservationReached(t *testing.T) {
	d := &mongoDriver{site: "B"}
	elected := time.Date(2026, 11, 29, 7, 0, 3, 0, time.UTC)
	obs := &mongo.Observation{Members: []mongo.MemberStatus{
		{Member: mongo.Member{Name: "mongo-a", Site: "A"}},
		{Member: mongo.Member{Name: "mongo-b", Site: "B"}, Reachable: true, Writable: true, Term: 3,
			LastElection: &mongo.Election{Reason: "electionTimeout", Date: elected, Term: 3}},
	}}
	if o := d.observation(obs); !o.Holds || !o.Reached.Equal(elected) {
		t.Fatalf("%+v", o)
	}
	obs.Members[1].LastElection = nil
	if o := d.observation(obs); !o.Reached.IsZero() {
		t.Fatalf("no election date, yet reached %s", o.Reached)
	}
}

// Compiling a plan reads no secret: the MongoDB credentials are read when
// the step's driver is first used. A credentials file written after the
// plan was compiled is the one the run uses.
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
	var d *mongoDriver
	for _, tk := range p.Tasks() {
		if md, ok := tk.Driver.(*mongoDriver); ok {
			d = md
		}
	}
	if d == nil {
		t.Fatal("no mongodb task in the takeover plan")
	}
	if err := os.WriteFile(file, []byte("sitectl:s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := d.replicaSet()
	if err != nil || set.Creds.Password != "s3cret-pw" {
		t.Fatalf("the run's replica set: %v (creds read at compile time?)", err)
	}
}
