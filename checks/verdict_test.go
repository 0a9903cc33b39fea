package checks

import (
	"context"
	"strings"
	"testing"
	"time"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	chap "github.com/sitectl/sitectl/checks/haproxy"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	"github.com/sitectl/sitectl/inventory"
)

func TestCombine(t *testing.T) {
	one := func(layer, site string) LayerVerdict { return LayerVerdict{Layer: layer, State: ServeOne, Site: site} }
	st := func(layer, state string) LayerVerdict {
		return LayerVerdict{Layer: layer, State: state, Fix: "fix-" + layer}
	}
	cases := []struct {
		name    string
		layers  []LayerVerdict
		state   string
		site    string
		summary string
	}{
		{"all agree", []LayerVerdict{one("services", "B"), one("mongodb", "B"), one("haproxy", "B")}, ServeOne, "B", "site B serves traffic"},
		{"layers disagree", []LayerVerdict{one("services", "B"), one("haproxy", "A")}, ServeSplit, "", "SPLIT: the layers disagree: A per haproxy; B per services"},
		{"a split layer", []LayerVerdict{one("services", "B"), st("activemq", ServeSplit)}, ServeSplit, "", "activemq is split"},
		{"unknown never healthy", []LayerVerdict{one("services", "B"), st("mongodb", ServeUnknown)}, ServeUnknown, "", "UNKNOWN: cannot tell who serves: mongodb could not be observed (the other layers say site B)"},
		{"one serves but another says none: partial, not split", []LayerVerdict{one("services", "B"), st("haproxy", ServeNone)}, ServePartial, "B", "PARTIAL: site B per services, but no site per haproxy"},
		{"a partial layer and the same site elsewhere", []LayerVerdict{one("services", "B"), {Layer: "haproxy", State: ServePartial, Site: "B", Fix: "f"}}, ServePartial, "B", "PARTIAL: site B per services, haproxy (partly)"},
		{"a partial layer for the other site is a split", []LayerVerdict{one("services", "B"), {Layer: "haproxy", State: ServePartial, Site: "A", Fix: "f"}}, ServeSplit, "", "A per haproxy (partly); B per services"},
		{"partial and unknown", []LayerVerdict{{Layer: "haproxy", State: ServePartial, Site: "B", Fix: "f"}, st("services", ServeUnknown)}, ServeUnknown, "", "(the other layers say site B)"},
		{"none", []LayerVerdict{st("services", ServeNone), st("haproxy", ServeNone)}, ServeNone, "", "no site serves"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Combine(tc.layers)
			if v.State != tc.state || v.Site != tc.site || !strings.Contains(v.Summary, tc.summary) {
				t.Errorf("got %s %q %q", v.State, v.Site, v.Summary)
			}
			if v.State != ServeOne && len(v.Fixes) == 0 && tc.state != ServeSplit {
				t.Errorf("no fix offered for %s", v.State)
			}
		})
	}
}

func TestCombineNeutralLayer(t *testing.T) {
	v := Combine([]LayerVerdict{{Layer: "services", State: ServeOne, Site: "B"}, {Layer: "mongodb", State: ServeOne, Site: "A", Neutral: true}})
	if !v.Serves("B") {
		t.Errorf("a neutral layer on A made the verdict %s %q", v.State, v.Summary)
	}
	v = Combine([]LayerVerdict{{Layer: "services", State: ServeOne, Site: "B"}, {Layer: "mongodb", State: ServeNone}})
	if v.State != ServePartial || v.Serves("B") {
		t.Errorf("no writable primary must not pass: %s", v.State)
	}
}

// A layer whose site rests on what could not be observed (a bridge to a
// broker that did not answer) never makes the verdict SPLIT alone: a site
// being lost reads UNKNOWN, not "both sites serve". A verified
// disagreement stays SPLIT, and an unverified vote that agrees counts.
func TestCombineUnverifiedLayer(t *testing.T) {
	one := func(layer, site string) LayerVerdict { return LayerVerdict{Layer: layer, State: ServeOne, Site: site} }
	unv := LayerVerdict{Layer: "activemq", State: ServeOne, Site: "A", Unverified: true}
	cases := []struct {
		name    string
		layers  []LayerVerdict
		state   string
		site    string
		summary string
	}{
		{"only the unverified layer disagrees", []LayerVerdict{one("services", "B"), unv, one("haproxy", "B")}, ServeUnknown, "",
			"UNKNOWN: cannot tell who serves: the layers disagree (A per activemq (unverified); B per services, haproxy), but activemq rests on what could not be observed"},
		{"a verified disagreement is still split", []LayerVerdict{one("services", "B"), unv, one("haproxy", "A")}, ServeSplit, "", "SPLIT: the layers disagree: A per activemq (unverified), haproxy; B per services"},
		{"an unverified vote that agrees counts", []LayerVerdict{one("services", "A"), unv, one("haproxy", "A")}, ServeOne, "A", "site A serves traffic"},
		{"an unverified split layer alone", []LayerVerdict{one("services", "B"), {Layer: "activemq", State: ServeSplit, Sites: []string{"A", "B"}, Unverified: true}}, ServeUnknown, "", "activemq rests on what could not be observed"},
		{"the same without the mark is split", []LayerVerdict{one("services", "B"), {Layer: "activemq", State: ServeOne, Site: "A"}, one("haproxy", "B")}, ServeSplit, "", "SPLIT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Combine(tc.layers)
			if v.State != tc.state || v.Site != tc.site || !strings.Contains(v.Summary, tc.summary) {
				t.Errorf("got %s %q %q, want %s %q %q", v.State, v.Site, v.Summary, tc.state, tc.site, tc.summary)
			}
		})
	}
}

// A haproxy layer whose backup server serves B, combined with services
// active on B: B serves. An haproxy that does not answer makes services
// active on A unknown, never healthy.
func TestCombineWithHAProxy(t *testing.T) {
	inv := &inventory.Inventory{
		Deployment: "test",
		Sites:      []*inventory.Site{{Name: "A", Role: inventory.Primary}, {Name: "B", Role: inventory.Secondary}},
		HAProxy: &inventory.HAProxy{RuntimeAPI: "tcp://" + closedport.Addr(t), Timeout: inventory.Duration(2 * time.Second), Backends: []*inventory.HAProxyBackend{
			{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B"}}}},
	}
	rows, err := hap.ParseStat("# pxname,svname,qcur,scur,smax,stot,status,weight,act,bck,chkfail,lastchg,check_status,addr,sid,type,\n" +
		"be_cc,site_a,0,2,2,9,DRAIN,1,1,0,0,5,L7OK,127.0.0.1:8000,1,2,\n" +
		"be_cc,site_b,0,0,0,9,UP,1,0,1,0,5,L7OK,127.0.0.1:8001,2,2,\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if v := Combine([]LayerVerdict{{Layer: LayerServices, State: ServeOne, Site: "B"}, chap.Judge(inv, rows, nil)}); !v.Serves("B") {
		t.Errorf("backup serving B: %+v", v)
	}
	l := chap.Layer{}.Observe(context.Background(), inv).Verdict(nil)
	if l.State != ServeUnknown {
		t.Fatalf("haproxy on a closed port: %+v", l)
	}
	if v := Combine([]LayerVerdict{{Layer: LayerServices, State: ServeOne, Site: "A"}, l}); v.State != ServeUnknown {
		t.Errorf("combined with an haproxy that does not answer: %+v", v)
	}
}
