package strictjson

import "testing"

func TestDecode(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := Decode([]byte(`{"a":1}`), &v); err != nil || v.A != 1 {
		t.Fatalf("%v %+v", err, v)
	}
	for _, bad := range []string{``, `{"a":1,"b":2}`, `{"a":1}{"a":2}`, `{"a":"x"}`, `{"a":1`, `{"a":1}]`, `{"a":1}}garbage`, `{"a":1} x`} {
		if err := Decode([]byte(bad), &v); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
