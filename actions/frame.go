package actions

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// frame is one message of the long connection: a proto2 pbbp2.Frame,
// encoded by hand with protowire because the schema is small and fixed.
type frame struct {
	SeqID           uint64
	LogID           uint64
	Service         int32
	Method          int32 // frameControl or frameData
	Headers         []header
	PayloadEncoding string
	PayloadType     string
	Payload         []byte
	LogIDNew        string
}

// header is one key/value of a frame.
type header struct{ Key, Value string }

// frame methods.
const (
	frameControl int32 = 0
	frameData    int32 = 1
)

// get returns the value of the first header named key, or "".
func (f *frame) get(key string) string {
	for _, h := range f.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// Marshal encodes f. The four required fields are always written, as
// proto2 requires.
func (f *frame) Marshal() []byte {
	b := make([]byte, 0, 64+len(f.Payload))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, f.SeqID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, f.LogID)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Service)))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Method)))
	for _, h := range f.Headers {
		var hb []byte
		hb = protowire.AppendTag(hb, 1, protowire.BytesType)
		hb = protowire.AppendString(hb, h.Key)
		hb = protowire.AppendTag(hb, 2, protowire.BytesType)
		hb = protowire.AppendString(hb, h.Value)
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, hb)
	}
	if f.PayloadEncoding != "" {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, f.PayloadEncoding)
	}
	if f.PayloadType != "" {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, f.PayloadType)
	}
	if f.Payload != nil {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	if f.LogIDNew != "" {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendString(b, f.LogIDNew)
	}
	return b
}

var errTruncated = errors.New("truncated")

// unmarshalFrame decodes a frame, skipping fields it does not know.
func unmarshalFrame(b []byte) (frame, error) {
	var f frame
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, fmt.Errorf("decode frame: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var err error
		switch {
		case num >= 1 && num <= 4 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			switch num {
			case 1:
				f.SeqID = v
			case 2:
				f.LogID = v
			case 3:
				f.Service = int32(int64(v))
			case 4:
				f.Method = int32(int64(v))
			}
			seen |= 1 << num
		case num == 5 && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				var h header
				h, err = unmarshalHeader(v)
				f.Headers = append(f.Headers, h)
			}
		case num >= 6 && num <= 9 && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			switch num {
			case 6:
				f.PayloadEncoding = string(v)
			case 7:
				f.PayloadType = string(v)
			case 8:
				f.Payload = append([]byte{}, v...)
			case 9:
				f.LogIDNew = string(v)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return f, fmt.Errorf("decode frame field %d: %w", num, protowire.ParseError(n))
		}
		if err != nil {
			return f, err
		}
		b = b[n:]
	}
	if seen != 0b11110 {
		return f, errors.New("decode frame: a required field is missing")
	}
	return f, nil
}

func unmarshalHeader(b []byte) (header, error) {
	var h header
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, fmt.Errorf("decode frame header: %w", errTruncated)
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if num == 1 {
				h.Key = string(v)
			} else {
				h.Value = string(v)
			}
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return h, fmt.Errorf("decode frame header: %w", errTruncated)
		}
		b = b[n:]
	}
	return h, nil
}
