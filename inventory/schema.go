package inventory

import (
	"reflect"
	"strings"
)

// SchemaID is the $id of the inventory's JSON Schema; `sitectl inventory
// schema` prints the schema, and an editor finds it through the
// yaml-language-server line at the top of an inventory.
const SchemaID = "https://sitectl.dev/schema/inventory-v1.json"

// durationPattern is what time.ParseDuration accepts (without a sign).
const durationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$`

// schemaDocs are the descriptions of the fields, keyed Type.yaml_key.
var schemaDocs = map[string]string{
	"Inventory.deployment":           "Name of the deployment; also the name of the run lock.",
	"Inventory.defaults":             "Settings every host and service inherits unless it overrides them.",
	"Inventory.lock":                 "Where the remote run lock lives.",
	"Inventory.sites":                "The two sites, A (primary) and B (secondary).",
	"Inventory.witness":              "The third location (the MongoDB arbiter's host). sitectl never connects to it over SSH.",
	"Inventory.mongodb":              "The MongoDB replica set spread over the sites.",
	"Inventory.activemq":             "The ActiveMQ brokers (a network of brokers).",
	"Inventory.haproxy":              "HAProxy in front of both sites.",
	"Inventory.runbooks":             "Extra runbook files or directories, relative to this file.",
	"Defaults.command_timeout":       "Deadline of one remote command (default 30s).",
	"Defaults.verify_timeout":        "Deadline to reach the desired state (default 60s).",
	"LockSpec.path":                  "File on the target site's first host (default /tmp/sitectl-<deployment>.lock).",
	"SSH.key":                        "Private key file.",
	"SSH.agent":                      "Use $SSH_AUTH_SOCK.",
	"SSH.insecure_ignore_host_key":   "Do not check host keys (never the default).",
	"SSH.connect_timeout":            "The network's deadline: TCP connect and the server's first byte (default 5s). Only a failure within it makes a host UNREACHABLE.",
	"SSH.handshake_timeout":          "Deadline of key exchange and authentication once the server has answered and a handshake slot is free (default 30s); past it the host is reported slow (NO ANSWER), not unreachable.",
	"SSH.max_handshakes":             "SSH handshakes run at once (defaults.ssh only; default 4 per CPU, at least 8). More wait for a slot; waiting never counts against a deadline.",
	"Site.consumer_match":            "ActiveMQ consumers of this site are recognised by these client-id prefixes or STOMP host headers.",
	"Host.local":                     "Run commands on this machine, without SSH.",
	"Host.ssh":                       "Overrides defaults.ssh field by field.",
	"Service.kind":                   "chat, mre, comms, ccm, reporting or custom.",
	"Service.group":                  "core (takeover/renounce, the default) or reporting (takeover-reporting/renounce-reporting).",
	"Service.host":                   "The one host it runs on (or use hosts).",
	"Service.hosts":                  "The hosts it runs on (or use host).",
	"Service.status":                 "Command whose exit status says the state: 0 running, 1-3 stopped, anything else unknown.",
	"Service.passive":                "State on the passive site: stopped (default) or running.",
	"Service.timeout":                "Overrides defaults.command_timeout.",
	"Probe.tcp":                      "host:port that must accept a connection.",
	"Probe.http":                     "URL to GET.",
	"Probe.status":                   "Expected HTTP status (default 200).",
	"Probe.json_field":               "Dotted path of a value in the JSON body.",
	"Probe.json_value":               "Expected value of json_field, in string form.",
	"Credentials.file":               `"username:password" on one line, or YAML {username, password}.`,
	"MongoDB.primary_follows_active": "The primary must be on the active site after a takeover (default false).",
	"MongoMember.site":               "A site name or the witness name.",
	"MongoMember.address":            "host:port",
	"Broker.stomp":                   "host:port of the broker's STOMP connector.",
	"HAProxy.runtime_api":            "unix:///path or tcp://host:port",
	"HAProxyBackend.servers":         "Server name to site name.",
	"Inventory.hooks":                "Commands run before and after every run and step (docs/operations.md).",
	"Inventory.notify":               "Webhooks told of runs: Slack, Teams or generic JSON (docs/operations.md).",
	"Hooks.before_step":              "Step name to the hooks run before it.",
	"Hooks.after_step":               "Step name to the hooks run after it.",
	"Hook.host":                      "An inventory host; default: the operator's machine.",
	"NotifyTarget.header":            "One HTTP header, read like credentials: a file holding \"Name: value\", or username_env/password_env.",
}

// schemaEnums are the closed sets of values of some fields.
var schemaEnums = map[string][]string{
	"Site.role":         {string(Primary), string(Secondary)},
	"Service.kind":      Kinds,
	"Service.group":     {string(Core), string(Reporting)},
	"Service.passive":   {"stopped", "running"},
	"Hook.on_error":     {"", HookStop, HookFail, HookContinue},
	"NotifyTarget.kind": {NotifySlack, NotifyTeams, NotifyGeneric},
}

// Schema returns the JSON Schema (draft 2020-12) of an inventory file,
// generated from the Go types: every yaml key, its type, the closed sets
// of values, durations as strings. It checks the shape only; the loader
// (`sitectl inventory check`) also checks the rules between fields (names
// that must exist, two sites, counts).
func Schema() map[string]any {
	defs := map[string]any{}
	root := schemaOf(reflect.TypeOf(Inventory{}), defs)
	s := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "sitectl inventory",
		"description": "A two-site deployment for sitectl: its sites, hosts and services, and the MongoDB, ActiveMQ and HAProxy parts the checks observe. See docs/inventory.md.",
		"$defs":       defs,
	}
	for k, v := range root {
		s[k] = v
	}
	s["required"] = []string{"deployment", "sites"}
	return s
}

var durationKind = reflect.TypeOf(Duration(0))

// schemaOf is the schema of t; named structs go to defs once and are
// referenced, so the document stays small.
func schemaOf(t reflect.Type, defs map[string]any) map[string]any {
	switch {
	case t == durationKind:
		return map[string]any{"type": []string{"string", "null"}, "pattern": durationPattern, "description": `a duration such as "30s", "2m" or "1m30s"`}
	case t.Kind() == reflect.Pointer:
		s := schemaOf(t.Elem(), defs)
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	case t.Kind() == reflect.Struct:
		if _, ok := defs[t.Name()]; !ok {
			defs[t.Name()] = nil // recursion guard
			defs[t.Name()] = structSchema(t, defs)
		}
		if t == reflect.TypeOf(Inventory{}) {
			return defs[t.Name()].(map[string]any)
		}
		return map[string]any{"$ref": "#/$defs/" + t.Name()}
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": []string{"array", "null"}, "items": schemaOf(t.Elem(), defs)}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), defs)}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return map[string]any{"type": "integer"}
	}
	return map[string]any{}
}

func structSchema(t reflect.Type, defs map[string]any) map[string]any {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		key := yamlKey(f)
		if key == "" {
			continue
		}
		p := schemaOf(f.Type, defs)
		if d, ok := schemaDocs[t.Name()+"."+key]; ok {
			if _, isRef := p["$ref"]; isRef || p["anyOf"] != nil {
				p = map[string]any{"allOf": []any{p}, "description": d}
			} else {
				p["description"] = d
			}
		}
		if e, ok := schemaEnums[t.Name()+"."+key]; ok {
			p["enum"] = e
		}
		props[key] = p
	}
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

// yamlKey is the key of a field in the YAML file, or "" for fields the file
// does not carry (yaml:"-").
func yamlKey(f reflect.StructField) string {
	tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
	if tag == "-" || !f.IsExported() {
		return ""
	}
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

// AsMap returns v (an inventory or a part of it) keyed as in the YAML file,
// durations as strings: the shape of `sitectl inventory show -o json`, which
// validates against Schema.
func AsMap(v any) any { return asMap(reflect.ValueOf(v)) }

func asMap(v reflect.Value) any {
	switch {
	case !v.IsValid():
		return nil
	case v.Type() == durationKind:
		return Duration(v.Int()).String()
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return asMap(v.Elem())
	case v.Kind() == reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			if key := yamlKey(v.Type().Field(i)); key != "" {
				m[key] = asMap(v.Field(i))
			}
		}
		return m
	case v.Kind() == reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = asMap(v.Index(i))
		}
		return out
	case v.Kind() == reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			m[k.String()] = asMap(v.MapIndex(k))
		}
		return m
	}
	return v.Interface()
}
