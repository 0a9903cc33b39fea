package mongodb

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/checks/layer"
	"github.com/sitectl/sitectl/inventory"
)

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

// A step's driver reads the MongoDB credentials when it is first used, not
// when the step is built (a plan, offline or not, reads no secret): a
// credentials file written after the plan was compiled is the one the run
// uses.
func TestStepReadsCredentialsWhenFirstUsed(t *testing.T) {
	inv, err := inventory.Load("../../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mongo-creds")
	inv.MongoDB.Credentials = &inventory.Credentials{File: file}
	st, err := Layer{}.Step(inv, "B", layer.StepSpec{})
	if err != nil {
		t.Fatalf("step with the credentials file not there yet: %v", err)
	}
	d, ok := st.Driver.(*mongoDriver)
	if !ok {
		t.Fatalf("driver %T", st.Driver)
	}
	if err := os.WriteFile(file, []byte("sitectl:s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := d.replicaSet()
	if err != nil || set.Creds.Password != "s3cret-pw" {
		t.Fatalf("the run's replica set: %v (creds read when the step was built?)", err)
	}
}
