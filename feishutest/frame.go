package feishutest

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// frame is the long connection's pbbp2.Frame. The stand-in has its own
// codec, separate from the service's, so that a mistake in one shows up
// against the other.
type frame struct {
	SeqID, LogID    uint64
	Service, Method int32
	Headers         [][2]string
	Payload         []byte
}

func (f *frame) get(key string) string {
	for _, h := range f.Headers {
		if h[0] == key {
			return h[1]
		}
	}
	return ""
}

func (f *frame) marshal() []byte {
	var b []byte
	for i, v := range []uint64{f.SeqID, f.LogID, uint64(int64(f.Service)), uint64(int64(f.Method))} {
		b = protowire.AppendTag(b, protowire.Number(i+1), protowire.VarintType)
		b = protowire.AppendVarint(b, v)
	}
	for _, h := range f.Headers {
		var hb []byte
		hb = protowire.AppendTag(hb, 1, protowire.BytesType)
		hb = protowire.AppendString(hb, h[0])
		hb = protowire.AppendTag(hb, 2, protowire.BytesType)
		hb = protowire.AppendString(hb, h[1])
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, hb)
	}
	if f.Payload != nil {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	return b
}

var errBadFrame = errors.New("bad frame")

func unmarshal(b []byte) (frame, error) {
	var f frame
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, errBadFrame
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && num <= 4:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return f, errBadFrame
			}
			switch num {
			case 1:
				f.SeqID = v
			case 2:
				f.LogID = v
			case 3:
				f.Service = int32(v)
			case 4:
				f.Method = int32(v)
			}
			n = m
		case typ == protowire.BytesType && num == 5:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return f, errBadFrame
			}
			var h [2]string
			for len(v) > 0 {
				hn, ht, k := protowire.ConsumeTag(v)
				if k < 0 || ht != protowire.BytesType {
					return f, errBadFrame
				}
				s, l := protowire.ConsumeString(v[k:])
				if l < 0 {
					return f, errBadFrame
				}
				if hn == 1 || hn == 2 {
					h[hn-1] = s
				}
				v = v[k+l:]
			}
			f.Headers = append(f.Headers, h)
			n = m
		case typ == protowire.BytesType && num == 8:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return f, errBadFrame
			}
			f.Payload = append([]byte{}, v...)
			n = m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return f, errBadFrame
			}
		}
		b = b[n:]
	}
	return f, nil
}
