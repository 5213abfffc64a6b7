package state

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/alertmanager-feishu/alertmanager-feishu/incident"
)

// Both stores keep an incident as its JSON without Last, a newline, then
// Last as it is. The webhook body is most of a record: inside the JSON it
// would be base64, a third larger, and decoding it would take most of a
// Load's time. JSON never holds a bare newline, so the first one ends it.

// encodeRecord is in as a store keeps it.
func encodeRecord(in *incident.Incident) ([]byte, error) {
	c := *in
	c.Last = nil
	var b bytes.Buffer
	b.Grow(1024 + len(in.Last))
	if err := json.NewEncoder(&b).Encode(&c); err != nil { // ends in a newline
		return nil, err
	}
	b.Write(in.Last)
	return b.Bytes(), nil
}

// decodeRecord is the incident encodeRecord kept as v. Its Last is a part
// of v.
func decodeRecord(v []byte) (*incident.Incident, error) {
	doc, last := splitRecord(v)
	in := new(incident.Incident)
	if err := json.Unmarshal(doc, in); err != nil {
		return nil, err
	}
	in.Chain = incident.ChainOf(in.ID)
	if len(last) > 0 {
		in.Last = last
	}
	return in, nil
}

// splitRecord is a kept record's JSON and its Last.
func splitRecord(v []byte) (doc, last []byte) {
	doc, last, _ = bytes.Cut(v, []byte{'\n'})
	return doc, last
}

func decodeIncident(chain string, v []byte) (*incident.Incident, error) {
	in, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("incident of chain %s: %w", chain, err)
	}
	return in, nil
}
