package cmdutil

import (
	"encoding/json"
	"io"
)

// SchemaVersion is the version of every JSON document sitectl prints
// (`-o json`). It changes only when a key is removed or changes meaning;
// new keys may appear within a version. docs/json.md describes the shapes.
const SchemaVersion = 1

// WriteJSON prints one JSON document: fields plus schema_version and
// message_type, indented, keys in snake_case.
func WriteJSON(w io.Writer, messageType string, fields map[string]any) error {
	doc := map[string]any{"schema_version": SchemaVersion, "message_type": messageType}
	for k, v := range fields {
		doc[k] = v
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteJSONDoc prints a document that has its own shape (a JSON Schema),
// indented, without the envelope keys.
func WriteJSONDoc(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteJSONLine prints v, a struct or map that encodes as a JSON object, as
// one line with schema_version and message_type first (event streams: one
// document per line).
func WriteJSONLine(w io.Writer, messageType string, v any) error {
	head, err := json.Marshal(map[string]any{"schema_version": SchemaVersion, "message_type": messageType})
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	line := head
	if len(body) > 2 && body[0] == '{' {
		line = append(append(head[:len(head)-1], ','), body[1:]...)
	}
	_, err = w.Write(append(line, '\n'))
	return err
}
