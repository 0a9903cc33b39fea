package runbooks

import (
	"math"
	"os"
	"testing"
	"time"

	"github.com/sitectl/sitectl/inventory"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

func examplePlan(t *testing.T, rb, site string) *Plan {
	t.Helper()
	b, err := os.ReadFile("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("example.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	p, err := cat.Compile(rb, inv, site)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInFlightTasks(t *testing.T) {
	p := examplePlan(t, "takeover", "B")
	var shell, driver *Task
	for _, tk := range p.Tasks() {
		if tk.Driver == nil && shell == nil && tk.Host != "" {
			shell = tk
		}
		if tk.Driver != nil && driver == nil {
			driver = tk
		}
	}
	if shell == nil || driver == nil {
		t.Fatal("takeover of the example has no shell task or no driver task")
	}
	var longest time.Duration
	for _, tk := range p.Tasks() {
		longest = max(longest, tk.CommandTimeout)
	}
	t0 := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ev := func(s int, k event.Kind, task, host string) event.Event {
		e := event.Event{Time: at(s), Kind: k, Task: task, Host: host}
		if k == event.StepEnd {
			e.Outcome = event.OK // the engine always sets it
		}
		return e
	}
	cases := []struct {
		name   string
		events []event.Event
		want   []InFlight
	}{
		{"nothing started", nil, nil},
		{"ended tasks are not in flight", []event.Event{
			ev(0, event.StepStart, shell.ID, shell.Host), ev(1, event.StepAct, shell.ID, shell.Host), ev(2, event.StepEnd, shell.ID, shell.Host),
		}, nil},
		{"a shell task killed after observing: bounded from its last event", []event.Event{
			ev(0, event.StepStart, shell.ID, shell.Host), ev(3, event.StepObserve, shell.ID, ""),
		}, []InFlight{{Task: shell.ID, Host: shell.Host, Command: shell.Act, Last: at(3), EndsBy: at(3).Add(shell.CommandTimeout + RoundUp + KillGrace)}}},
		{"a driver task died with sitectl", []event.Event{
			ev(5, event.StepStart, driver.ID, ""),
		}, []InFlight{{Task: driver.ID, Last: at(5), EndsBy: at(5), Local: true}}},
		{"an unknown task is bounded by the longest command timeout", []event.Event{
			ev(1, event.StepStart, "gone/x", "h"),
		}, []InFlight{{Task: "gone/x", Host: "h", Last: at(1), EndsBy: at(1).Add(longest + RoundUp + KillGrace)}}},
		{"sorted by when they end", []event.Event{
			ev(0, event.StepStart, "gone/x", "h"), ev(9, event.StepStart, driver.ID, ""),
		}, []InFlight{{Task: driver.ID, Last: at(9), EndsBy: at(9), Local: true}, {Task: "gone/x", Host: "h", Last: at(0), EndsBy: at(0).Add(longest + RoundUp + KillGrace)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := InFlightTasks(journal.Run{Events: c.events}, p)
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("[%d] got %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// The host runs a command under "timeout -k 2 SECS" with SECS its deadline
// rounded UP to whole seconds: a command started with 1.2 s left is killed
// 2 s + 2 s later. The in-flight bound must cover that second, or resume
// acts beside a command still running.
func TestInFlightBoundCoversTheRoundedUpHostDeadline(t *testing.T) {
	plan := examplePlan(t, "takeover", "B")
	var shell *Task
	for _, tk := range plan.Tasks() {
		if tk.Driver == nil && tk.Host != "" {
			shell = tk
			break
		}
	}
	if shell == nil {
		t.Fatal("no shell task")
	}
	last := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	run := journal.Run{Events: []event.Event{{Time: last, Kind: event.StepStart, Task: shell.ID, Host: shell.Host}}}
	got := InFlightTasks(run, plan)
	if len(got) != 1 {
		t.Fatalf("in flight: %+v", got)
	}
	// the command may start a little after Last, with its whole timeout
	// left, rounded up to whole seconds on the host
	secs := time.Duration(math.Ceil(shell.CommandTimeout.Seconds())) * time.Second
	hostKill := last.Add(200 * time.Millisecond).Add(secs).Add(2 * time.Second)
	if got[0].EndsBy.Before(hostKill) {
		t.Errorf("EndsBy %s is before the host's kill at the latest, %s", got[0].EndsBy.Format(time.TimeOnly), hostKill.Format(time.TimeOnly))
	}
}
