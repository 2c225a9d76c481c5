// Package jsonvalue computes what encoding/json makes of a Go value without
// the cost encoding/json pays on a type's first use.
//
// json.Marshal builds an encoder for a struct type's whole tree the first
// time it meets the type — every field's type, reached or not — and keeps
// it for the process. For corev1.Pod that is hundreds of types: 1.1 ms of
// reflection in every short-lived CLI process that encodes one pod (the
// OCI runtime spec: 0.5–0.7 ms), for a pod that sets a dozen fields. Of
// visits only the values that are there and applies encoding/json's rules
// to them (field names and tags, omitempty, omitzero, ",string", embedded
// structs, Marshaler and TextMarshaler, []byte as base64, map keys, invalid
// UTF-8); the result is the generic value json.Unmarshal with UseNumber
// would give for json.Marshal's output. TestOfMatchesEncodingJSON holds it
// to that over randomly filled pods and specs.
package jsonvalue

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Of returns the value json.Marshal(v) encodes, as json.Decoder with
// UseNumber decodes it: nil, bool, json.Number, string, []any and
// map[string]any. It fails where json.Marshal fails (a NaN, a Marshaler's
// error or invalid output, a map key of an unsupported type).
func Of(v any) (any, error) {
	return value(reflect.ValueOf(v))
}

// Marshal is json.Marshal(v) with every object's keys in sorted order, not
// in struct field order; decoding it gives what decoding json.Marshal(v)
// gives.
func Marshal(v any) ([]byte, error) {
	g, err := Of(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	isZeroerType      = reflect.TypeFor[interface{ IsZero() bool }]()
)

func value(v reflect.Value) (any, error) {
	if !v.IsValid() {
		return nil, nil
	}
	t := v.Type()
	// As encoding/json's newTypeEncoder: a pointer receiver's method is
	// used when the value is addressable, a value receiver's always.
	if t.Kind() != reflect.Pointer && v.CanAddr() {
		if reflect.PointerTo(t).Implements(marshalerType) {
			return marshaled(v.Addr())
		}
		if reflect.PointerTo(t).Implements(textMarshalerType) {
			return textMarshaled(v.Addr())
		}
	}
	if t.Implements(marshalerType) {
		return marshaled(v)
	}
	if t.Implements(textMarshalerType) {
		return textMarshaled(v)
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return json.Number(strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return float(v)
	case reflect.String:
		return validString(v.String()), nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return value(v.Elem())
	case reflect.Struct:
		return object(v)
	case reflect.Map:
		return mapValue(v)
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if isBytes(t) {
			return base64.StdEncoding.EncodeToString(v.Bytes()), nil
		}
		return array(v)
	case reflect.Array:
		return array(v)
	}
	return nil, &json.UnsupportedTypeError{Type: t}
}

// isBytes is encoding/json's test for a []byte encoded as base64: a slice
// of a uint8 kind whose pointer does not marshal itself.
func isBytes(t reflect.Type) bool {
	e := t.Elem()
	if e.Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(e)
	return !p.Implements(marshalerType) && !p.Implements(textMarshalerType)
}

func marshaled(v reflect.Value) (any, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, nil
	}
	b, err := v.Interface().(json.Marshaler).MarshalJSON()
	if err != nil {
		return nil, &json.MarshalerError{Type: v.Type(), Err: err}
	}
	return decode(b, v.Type())
}

func textMarshaled(v reflect.Value) (any, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, nil
	}
	b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
	if err != nil {
		return nil, &json.MarshalerError{Type: v.Type(), Err: err}
	}
	return validString(string(b)), nil
}

// decode turns a MarshalJSON's output into its generic value.
func decode(b []byte, t reflect.Type) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, &json.MarshalerError{Type: t, Err: err}
	}
	if d.More() {
		return nil, &json.MarshalerError{Type: t, Err: fmt.Errorf("invalid character after top-level value")}
	}
	return out, nil
}

// float formats as encoding/json's floatEncoder does.
func float(v reflect.Value) (any, error) {
	f := v.Float()
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &json.UnsupportedValueError{Value: v, Str: strconv.FormatFloat(f, 'g', -1, v.Type().Bits())}
	}
	bits := v.Type().Bits()
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	s := strconv.FormatFloat(f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
	}
	return json.Number(s), nil
}

// validString is s as encoding/json writes it: every byte that is not
// part of a valid UTF-8 sequence becomes U+FFFD.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(unicode.ReplacementChar)
		} else {
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

func array(v reflect.Value) (any, error) {
	out := make([]any, v.Len())
	for i := range out {
		e, err := value(v.Index(i))
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func mapValue(v reflect.Value) (any, error) {
	if v.IsNil() {
		return nil, nil
	}
	kt := v.Type().Key()
	switch {
	case kt.Kind() == reflect.String, kt.Implements(textMarshalerType):
	case kt.Kind() >= reflect.Int && kt.Kind() <= reflect.Uintptr:
	default:
		return nil, &json.UnsupportedTypeError{Type: v.Type()}
	}
	out := make(map[string]any, v.Len())
	it := v.MapRange()
	for it.Next() {
		k, err := mapKey(it.Key())
		if err != nil {
			return nil, err
		}
		e, err := value(it.Value())
		if err != nil {
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}

// mapKey is encoding/json's resolveKeyName.
func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return validString(k.String()), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		if err != nil {
			return "", &json.MarshalerError{Type: k.Type(), Err: err}
		}
		return validString(string(b)), nil
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	default:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
}

func object(v reflect.Value) (any, error) {
	out := map[string]any{}
fields:
	for _, f := range fieldsOf(v.Type()) {
		fv := v
		for _, i := range f.index {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue fields // a nil embedded pointer holds no fields
				}
				fv = fv.Elem()
			}
			fv = fv.Field(i)
		}
		if f.omitEmpty && isEmpty(fv) || f.omitZero && isZero(fv) {
			continue
		}
		e, err := value(fv)
		if err != nil {
			return nil, err
		}
		if f.quoted {
			e, err = quote(e, fv)
			if err != nil {
				return nil, err
			}
		}
		out[f.name] = e
	}
	return out, nil
}

// quote applies the ",string" option: a bool, number or string is written
// inside a JSON string.
func quote(e any, fv reflect.Value) (any, error) {
	switch x := e.(type) {
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return string(x), nil
	case string:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case nil:
		return nil, nil // a nil pointer stays null
	}
	return nil, &json.UnsupportedTypeError{Type: fv.Type()}
}

// isEmpty is encoding/json's isEmptyValue (omitempty).
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZero is omitzero's test: the type's IsZero method where it has one,
// else the zero value.
func isZero(v reflect.Value) bool {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return v.IsNil() || v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() ||
			v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return v.IsNil() || v.Interface().(interface{ IsZero() bool }).IsZero()
	case t.Implements(isZeroerType):
		return v.Interface().(interface{ IsZero() bool }).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		if !v.CanAddr() {
			c := reflect.New(t).Elem()
			c.Set(v)
			v = c
		}
		return v.Addr().Interface().(interface{ IsZero() bool }).IsZero()
	}
	return v.IsZero()
}

// field is one encoded field of a struct type.
type field struct {
	name                        string
	index                       []int
	tagged                      bool
	omitEmpty, omitZero, quoted bool
}

var cache sync.Map // reflect.Type → []field

// fieldsOf is encoding/json's typeFields for t, computed for t alone (its
// fields' types are looked at when a value of theirs is encoded).
func fieldsOf(t reflect.Type) []field {
	if f, ok := cache.Load(t); ok {
		return f.([]field)
	}
	fields := typeFields(t)
	cache.Store(t, fields)
	return fields
}

func typeFields(t reflect.Type) []field {
	type queued struct {
		typ   reflect.Type
		index []int
	}
	var all []field
	current, next := []queued{}, []queued{{typ: t}}
	// count: how often each type of this level was embedded one level up;
	// nextCount the same for the next level
	var count map[reflect.Type]int
	nextCount := map[reflect.Type]int{}
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := 0; i < q.typ.NumField(); i++ {
				sf := q.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !validTag(name) {
					name = ""
				}
				index := append(slices.Clone(q.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOpt(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						quoted = true
					}
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					f := field{name: name, index: index, tagged: name != "",
						omitEmpty: hasOpt(opts, "omitempty"), omitZero: hasOpt(opts, "omitzero"), quoted: quoted}
					if f.name == "" {
						f.name = sf.Name
					}
					all = append(all, f)
					if count[q.typ] > 1 {
						// as encoding/json: a second copy at this depth
						// annihilates the first; dominance sorts it out
						all = append(all, all[len(all)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, queued{typ: ft, index: index})
				}
			}
		}
	}
	// Dominance, as encoding/json: per name, the shallowest field; among
	// several at that depth the only tagged one; otherwise none.
	slices.SortStableFunc(all, func(a, b field) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	var out []field
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		if f, ok := dominant(all[i:j]); ok {
			out = append(out, f)
		}
		i = j
	}
	return out
}

func dominant(fs []field) (field, bool) {
	if len(fs) > 1 && len(fs[0].index) == len(fs[1].index) && fs[0].tagged == fs[1].tagged {
		return field{}, false
	}
	return fs[0], true
}

func hasOpt(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// validTag is encoding/json's isValidTag.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|} ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}
