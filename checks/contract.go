package checks

import (
	camq "github.com/sitectl/sitectl/checks/activemq"
	chap "github.com/sitectl/sitectl/checks/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
	cmongo "github.com/sitectl/sitectl/checks/mongodb"
)

// The layer contract's types and constants (checks/layer) under the names
// checks and its users have always used: one definition each, in layer.

type (
	LayerVerdict = layer.Verdict
	Row          = layer.Row
	Evidence     = layer.Evidence
	Saw          = layer.Saw
	SiteState    = layer.SiteState
	SiteVerdict  = layer.SiteVerdict
)

const (
	LayerServices = layer.LayerServices
	LayerMongoDB  = layer.LayerMongoDB
	LayerActiveMQ = layer.LayerActiveMQ
	LayerHAProxy  = layer.LayerHAProxy

	ServeOne     = layer.ServeOne
	ServeNone    = layer.ServeNone
	ServeSplit   = layer.ServeSplit
	ServePartial = layer.ServePartial
	ServeUnknown = layer.ServeUnknown

	SawAlive    = layer.SawAlive
	SawDown     = layer.SawDown
	SawNoAnswer = layer.SawNoAnswer
	SawAccess   = layer.SawAccess

	SiteReachable       = layer.SiteReachable
	SiteDown            = layer.SiteDown
	SiteUnreachableHere = layer.SiteUnreachableHere
	SiteUnknown         = layer.SiteUnknown
)

// Layers are the deployment's layers besides its services, each one
// package (checks/activemq, checks/mongodb, checks/haproxy), in the order
// verdicts list them. Adding a layer is adding it here (docs/architecture.md).
func Layers() []layer.Layer {
	return []layer.Layer{camq.Layer{}, cmongo.Layer{}, chap.Layer{}}
}

// LayerNamed is the layer of that name (a runbook step's action), or nil.
func LayerNamed(name string) layer.Layer {
	for _, l := range Layers() {
		if l.Name() == name {
			return l
		}
	}
	return nil
}
