package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"

	"github.com/peapod/peapod/runtime/spec"
)

// want is the oracle: what encoding/json's own Marshal gives, decoded as
// Of promises.
func want(t *testing.T, v any) (any, error) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		t.Fatalf("decoding json.Marshal's own output %s: %v", b, err)
	}
	return out, nil
}

// check compares Of(v) and Marshal(v) with encoding/json on v.
func check(t *testing.T, v any) {
	t.Helper()
	w, werr := want(t, v)
	got, err := Of(v)
	if (err != nil) != (werr != nil) {
		t.Fatalf("Of(%#v): error %v, encoding/json's %v", v, err, werr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Fatalf("Of(%T) differs from encoding/json:\n got  %.3000s\n want %.3000s", v, gb, wb)
	}
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var back any
	if err := d.Decode(&back); err != nil || !reflect.DeepEqual(back, w) {
		t.Fatalf("Marshal(%T) = %s (%v), which does not decode to encoding/json's value", v, b, err)
	}
}

type inner struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

type Embedded struct {
	E1 string
	E2 int `json:"e2"`
}

type embeddedPtr struct {
	P1 string `json:"p1"`
}

type conflictA struct{ X int }
type conflictB struct{ X int }
type taggedC struct {
	X int `json:"X"`
}

type zeroer struct{ n int }

func (z zeroer) IsZero() bool                 { return z.n == 7 } // "zero" is 7
func (z zeroer) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprint(z.n)), nil }

type ptrMarshaler struct{ s string }

func (p *ptrMarshaler) MarshalJSON() ([]byte, error) { return json.Marshal("ptr:" + p.s) }

type textKey struct{ a, b string }

func (k textKey) MarshalText() ([]byte, error) { return []byte(k.a + "/" + k.b), nil }

type ptrText struct{ s string }

func (p *ptrText) MarshalText() ([]byte, error) { return []byte("t:" + p.s), nil }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("no") }

type invalidOut struct{}

func (invalidOut) MarshalJSON() ([]byte, error) { return []byte("{"), nil }

type myBytes []byte

type edges struct {
	Embedded
	*embeddedPtr
	conflictA
	conflictB
	taggedC
	unexported int
	Skip       string `json:"-"`
	//lint:ignore SA5008 a field named "-" is one of the cases under test
	Dash    string `json:"-,"`
	Renamed int    `json:"renamed"`
	//lint:ignore SA5008 an invalid name (encoding/json falls back to the field's) is under test
	BadTag         int    `json:"a\\b"`
	Omit           string `json:",omitempty"`
	OmitPtr        *int   `json:"omitPtr,omitempty"`
	OmitStruct     inner  `json:"omitStruct,omitempty"`
	OmitZero       inner  `json:"omitZero,omitzero"`
	OmitZeroer     zeroer `json:"omitZeroer,omitzero"`
	NegZero        float64
	Quoted         int     `json:"quoted,string"`
	QuotedStr      string  `json:"quotedStr,string"`
	QuotedPtr      *bool   `json:"quotedPtr,string"`
	QuotedNil      *int    `json:"quotedNil,string"`
	F32            float32 `json:"f32"`
	F64            float64 `json:"f64"`
	Bytes          []byte
	NilBytes       []byte
	MyBytes        myBytes
	Array          [3]int
	IntMap         map[int]string
	UintMap        map[uint8]bool
	TextMap        map[textKey]int
	NilMap         map[string]int
	Any            any
	AnyPtr         any
	PtrMarshal     ptrMarshaler
	PtrMarshalList []ptrMarshaler
	PtrMarshalMap  map[string]ptrMarshaler
	PtrText        ptrText
	Time           metav1.Time
	TimePtr        *metav1.Time
	Quantity       resource.Quantity
	IntOrString    intstr.IntOrString
	Invalid        string
	InvalidKey     map[string]int
	HTML           string
	Nested         []map[string][]*inner
}

func TestOfMatchesEncodingJSON(t *testing.T) {
	seven := 7
	yes := true
	now := metav1.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	e := edges{
		Embedded:       Embedded{E1: "e", E2: 2},
		embeddedPtr:    &embeddedPtr{P1: "p"},
		conflictA:      conflictA{X: 1},
		conflictB:      conflictB{X: 2},
		taggedC:        taggedC{X: 3},
		unexported:     9,
		Skip:           "no",
		Dash:           "dash",
		Renamed:        4,
		BadTag:         5,
		OmitPtr:        &seven,
		OmitZeroer:     zeroer{n: 3},
		NegZero:        math.Copysign(0, -1),
		Quoted:         12,
		QuotedStr:      `say "<hi>"`,
		QuotedPtr:      &yes,
		F32:            1.5e-7,
		F64:            1e21,
		Bytes:          []byte{0, 1, 2, 255},
		MyBytes:        myBytes("mine"),
		Array:          [3]int{1, 2, 3},
		IntMap:         map[int]string{-1: "minus", 10: "ten"},
		UintMap:        map[uint8]bool{200: true},
		TextMap:        map[textKey]int{{"a", "b"}: 1},
		Any:            &inner{A: 1},
		AnyPtr:         (*inner)(nil),
		PtrMarshal:     ptrMarshaler{"field"},
		PtrMarshalList: []ptrMarshaler{{"elem"}},
		PtrMarshalMap:  map[string]ptrMarshaler{"k": {"value"}},
		PtrText:        ptrText{"x"},
		Time:           now,
		TimePtr:        &now,
		Quantity:       resource.MustParse("1500m"),
		IntOrString:    intstr.FromString("http"),
		Invalid:        "a\xffb\xc3",
		InvalidKey:     map[string]int{"k\xfe": 1},
		HTML:           "<a href='x'>&</a>",
		Nested:         []map[string][]*inner{{"x": {{A: 1, B: "b"}, nil}}, nil},
	}
	check(t, e)
	check(t, &e)
	check(t, edges{}) // every omission
	for _, v := range []any{nil, 1, "s", []int(nil), map[string]any{"a": []any{1.5}}, &seven, inner{}} {
		check(t, v)
	}
}

func TestOfFailsWhereEncodingJSONFails(t *testing.T) {
	for _, v := range []any{
		math.NaN(),
		struct{ F float64 }{math.Inf(1)},
		failing{},
		[]any{invalidOut{}},
		map[[2]int]int{{1, 2}: 3},
		struct{ C chan int }{make(chan int)},
	} {
		if _, err := json.Marshal(v); err == nil {
			t.Fatalf("encoding/json accepts %#v: the case tests nothing", v)
		}
		if _, err := Of(v); err == nil {
			t.Errorf("Of(%#v) succeeded where json.Marshal fails", v)
		}
	}
}

// filler fills the API and OCI types with random values that json.Marshal
// accepts (an IntOrString of neither kind, or a NaN, it refuses).
func filler(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.3).NumElements(0, 3).MaxDepth(12).Funcs(
		func(q *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*q = intstr.FromInt32(c.Int31())
			} else {
				*q = intstr.FromString(c.String(8))
			}
		},
		func(q *resource.Quantity, c randfill.Continue) {
			*q = *resource.NewMilliQuantity(c.Int63n(1<<40), resource.DecimalSI)
		},
		func(f *metav1.FieldsV1, c randfill.Continue) {
			f.SetRawString(fmt.Sprintf(`{"f:%d":{}}`, c.Intn(100)))
		},
		func(tm *metav1.Time, c randfill.Continue) {
			*tm = metav1.Unix(c.Int63n(1<<32), 0)
		},
		func(a *any, c randfill.Continue) {
			switch c.Intn(4) {
			case 0:
				*a = c.String(6)
			case 1:
				*a = map[string]any{c.String(3): c.Int63()}
			case 2:
				*a = []any{c.Bool(), nil}
			}
		},
		func(f *float64, c randfill.Continue) { *f = c.NormFloat64() * 1e6 },
		func(f *float32, c randfill.Continue) { *f = float32(c.NormFloat64()) },
	)
}

// randomRuns is how many random values of each type the random tests
// compare: fewer with -short.
func randomRuns() int {
	if testing.Short() {
		return 30
	}
	return 300
}

func TestOfRandomPods(t *testing.T) {
	for i := range randomRuns() {
		var p corev1.Pod
		filler(int64(i)).Fill(&p)
		check(t, &p)
	}
}

func TestOfRandomSpecs(t *testing.T) {
	for i := range randomRuns() {
		var p spec.Pod
		filler(int64(i)).Fill(&p)
		check(t, &p)
		var s specs.Spec
		filler(int64(i)).Fill(&s)
		check(t, &s)
	}
}

// TestMarshalDecodesToTheSamePod is what the record and the spec file need:
// decoding Marshal's output gives back the value encoding/json's would.
func TestMarshalDecodesToTheSamePod(t *testing.T) {
	for i := range 50 {
		var p corev1.Pod
		filler(int64(1000 + i)).Fill(&p)
		b, err := Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		wb, _ := json.Marshal(&p)
		var got, want corev1.Pod
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Marshal's output does not decode: %v\n%s", err, b)
		}
		if err := json.Unmarshal(wb, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("pod %d decodes differently from encoding/json's encoding", i)
		}
	}
}
