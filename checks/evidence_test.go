package checks

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/inventory"
)

// Every combination of what three independent observers answer (alive,
// saw it down, could not answer, access problem) and what a fourth whose
// "alive" may be stale answers (a broker's bridge), under every kind of
// operator path and several quorums, against the rules of docs/checks.md
// "Site loss".
func TestJudgeSiteEveryCombination(t *testing.T) {
	answers := []Saw{SawAlive, SawDown, SawNoAnswer, SawAccess}
	operators := []Saw{SawAlive, SawDown, SawNoAnswer, SawAccess}
	for _, op := range operators {
		for _, a := range answers {
			for _, b := range answers {
				for _, c := range answers {
					for _, w := range []Saw{SawAlive, SawDown, SawNoAnswer} {
						for _, quorum := range []int{1, 2, 3, 5} {
							obs := []Saw{a, b, c}
							var others []Evidence
							for i, s := range obs {
								others = append(others, Evidence{Site: "A", Observer: fmt.Sprintf("obs%d", i), Independent: true, Saw: s, Detail: "d"})
							}
							others = append(others, Evidence{Site: "A", Observer: "broker", Independent: true, Weak: true, Saw: w, Detail: "bridge"})
							operator := []Evidence{{Site: "A", Observer: "operator → a-app", Saw: op, Detail: "x"}}
							v := JudgeSite("A", operator, others, quorum, len(obs)+1)

							alive, down := 0, 0
							for _, s := range obs {
								switch s {
								case SawAlive:
									alive++
								case SawDown:
									down++
								}
							}
							if w == SawDown {
								down++
							}
							var want SiteState
							switch {
							case op == SawAlive:
								want = SiteReachable
							case op != SawDown:
								want = SiteUnknown // an access problem or a slow host is never a loss
							case alive > 0:
								want = SiteUnreachableHere
							case down >= min(quorum, len(obs)+1):
								want = SiteDown // a stale "alive" does not hold off a confirmed loss
							case w == SawAlive:
								want = SiteUnreachableHere
							default:
								want = SiteUnknown
							}
							if v.State != want {
								t.Errorf("operator %s, observers %v, weak %s, quorum %d: got %s (%s), want %s", op, obs, w, quorum, v.State, v.Summary, want)
							}
							if v.State == SiteDown && !v.Down() {
								t.Errorf("Down() false for DOWN")
							}
						}
					}
				}
			}
		}
	}
}

func TestJudgeSiteRules(t *testing.T) {
	opDown := []Evidence{{Observer: "operator → a-app", Saw: SawDown, Detail: "dial tcp: i/o timeout"}, {Observer: "operator → a-rpt", Saw: SawDown}}
	ev := func(obs string, saw Saw) Evidence {
		return Evidence{Observer: obs, Independent: true, Saw: saw, Detail: obs + " detail"}
	}
	cases := []struct {
		name       string
		op, others []Evidence
		quorum     int
		configured int
		want       SiteState
		summary    string
	}{
		{"two confirm", opDown, []Evidence{ev("arbiter", SawDown), ev("haproxy", SawDown)}, 2, 4, SiteDown, "2 independent observer(s) confirm"},
		{"one confirms, quorum 2", opDown, []Evidence{ev("arbiter", SawDown), ev("haproxy", SawNoAnswer)}, 2, 4, SiteUnknown, "1 of 2"},
		{"silent observers never lower the bar", opDown, []Evidence{ev("arbiter", SawDown)}, 2, 4, SiteUnknown, "1 of 2"},
		{"fewer configured than the quorum: all of them", opDown, []Evidence{ev("haproxy", SawDown)}, 2, 1, SiteDown, "quorum 1"},
		{"nobody configured", opDown, nil, 2, 0, SiteUnknown, "no independent observer is configured"},
		{"one alive beats many down", opDown, []Evidence{ev("arbiter", SawDown), ev("haproxy", SawDown), ev("probe from b-app", SawAlive)}, 2, 4, SiteUnreachableHere, "probe from b-app"},
		{"several rows of one observer count once", opDown, []Evidence{ev("haproxy", SawDown), ev("haproxy", SawDown)}, 2, 4, SiteUnknown, "1 of 2"},
		{"a host key problem is not a loss", []Evidence{{Observer: "operator → a-app", Saw: SawAccess, Detail: "HOST KEY MISMATCH"}}, []Evidence{ev("arbiter", SawDown), ev("haproxy", SawDown)}, 2, 4, SiteUnknown, "access problem"},
		{"one host answers", []Evidence{{Observer: "operator → a-app", Saw: SawAlive}, {Observer: "operator → a-rpt", Saw: SawDown}}, nil, 2, 4, SiteReachable, "in part"},
		{"no host", nil, nil, 2, 4, SiteUnknown, "no host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := JudgeSite("A", tc.op, tc.others, tc.quorum, tc.configured)
			if v.State != tc.want || !strings.Contains(v.Summary, tc.summary) {
				t.Errorf("got %s %q, want %s containing %q", v.State, v.Summary, tc.want, tc.summary)
			}
			if len(v.Lines()) != len(tc.op)+len(tc.others) {
				t.Errorf("evidence lines %d, want every row", len(v.Lines()))
			}
		})
	}
}

// The probe command runs for real (bash, timeout) against loopback: an
// open port, a refused one (in two sites: within a site, the probe stops
// at the first open endpoint; TestProbeStopsAtTheFirstOpenEndpoint).
func TestProbeCommandReal(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closedAddr := closedport.Addr(t)
	eps := []Endpoint{{Site: "A", Label: "open", Addr: ln.Addr().String()}, {Site: "B", Label: "closed", Addr: closedAddr}}
	out, err := exec.Command("sh", "-c", ProbeCommand(eps, 2*time.Second)).Output()
	if err != nil {
		t.Fatalf("probe command: %v", err)
	}
	res := ParseProbe(out)
	if res[0] != "open" || res[1] != "refused" {
		t.Fatalf("got %v from %q", res, out)
	}
	e := probeEvidence("b-app", "A", eps, res, time.Now())
	if e.Saw != SawAlive || !strings.Contains(e.Detail, "tcp open open") {
		t.Errorf("evidence %+v", e)
	}
	e = probeEvidence("b-app", "A", eps[1:], map[int]string{0: "refused"}, time.Now())
	if e.Saw != SawDown {
		t.Errorf("all refused: %+v", e)
	}
	e = probeEvidence("b-app", "A", eps, map[int]string{0: "timeout", 1: "error"}, time.Now())
	if e.Saw != SawNoAnswer {
		t.Errorf("a probe error is no answer: %+v", e)
	}
}

func FuzzParseProbe(f *testing.F) {
	f.Add([]byte("@@sitectl-probe 0 open\n@@sitectl-probe 1 timeout\n"))
	f.Add([]byte("@@sitectl-probe -1 open\n@@sitectl-probe x y z\n"))
	f.Add([]byte("@@sitectl-probe 0 try\n@@sitectl-probe 1 try\n@@sitectl-probe 1 refused\n@@sitectl-probe 2 open\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := map[string]bool{"open": true, "refused": true, "timeout": true, "unreachable": true, "reset": true, "error": true}
		res := ParseProbe(b)
		for i, r := range res {
			if i < 0 || !valid[r] {
				t.Fatalf("bad result %d %q", i, r)
			}
		}
		// an endpoint tried has a result (timeout when it has no end line)
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == probeMarker && f[2] == "try" {
				if i, err := strconv.Atoi(f[1]); err == nil && i >= 0 && res[i] == "" {
					t.Fatalf("endpoint %d tried, no result in %v", i, res)
				}
			}
		}
	})
}

func TestObserversAndEndpoints(t *testing.T) {
	inv, err := inventory.Load("../inventory/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := Observers(inv, "A")
	want := []string{"activemq amq-b", "mongodb mongo-b", "mongodb mongo-arbiter", "haproxy", "probe from b-app", "probe from w-arb"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("observers of A: %v, want %v", got, want)
	}
	eps := Endpoints(inv, "A")
	var addrs []string
	for _, e := range eps {
		addrs = append(addrs, e.Addr)
	}
	if strings.Join(addrs, ",") != "127.0.0.11:22,127.0.0.12:22,127.0.0.11:5222,127.0.0.11:8080" {
		t.Errorf("endpoints of A: %v", addrs)
	}
}
