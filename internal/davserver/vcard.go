package davserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/emersion/go-vcard"
)

// parseCard parses and checks an address object resource (RFC 6352 §5.1):
// exactly one vCard, version 3.0 or 4.0, with FN (RFC 6350 §6.2.1 and
// RFC 2426 §3.1.1 make it mandatory).
func parseCard(data []byte) (card vcard.Card, o Object, err error) {
	// As for iCalendar: a panic of the parser is invalid data.
	defer func() {
		if r := recover(); r != nil {
			card, o, err = nil, Object{}, fmt.Errorf("not valid vCard data")
		}
	}()
	return parseCardData(data)
}

func parseCardData(data []byte) (vcard.Card, Object, error) {
	var o Object
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err != nil {
		return nil, o, fmt.Errorf("not valid vCard data: %v", err)
	}
	if _, err := dec.Decode(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, o, fmt.Errorf("more than one vCard in one address object resource (RFC 6352 §5.1)")
		}
		return nil, o, fmt.Errorf("not valid vCard data after the first card: %v", err)
	}
	switch v := card.Value(vcard.FieldVersion); v {
	case "3.0", "4.0":
	case "":
		return nil, o, fmt.Errorf("VERSION is missing")
	default:
		return nil, o, fmt.Errorf("vCard version %s is not supported (3.0 and 4.0 are)", v)
	}
	if card.Get(vcard.FieldFormattedName) == nil {
		return nil, o, fmt.Errorf("FN is missing")
	}
	o.Component = "VCARD"
	o.UID = card.Value(vcard.FieldUID)
	return card, o, nil
}
