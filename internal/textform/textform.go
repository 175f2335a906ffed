// Package textform writes a struct as "name: value" lines, the text form
// of the value whose JSON a command prints under --json, so that the two
// outputs cannot say different things.
package textform

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// Write writes a struct (or a pointer to one) as "name: value" lines: a line per field in the struct's order,
// named by its JSON name with spaces for underscores, optional fields left
// out when empty (omitempty); a nested struct's fields indented beneath
// its name, a list's elements one a line (name[i]).
func Write(w io.Writer, v any) {
	var rows [][2]string
	fieldRows(&rows, reflect.Indirect(reflect.ValueOf(v)), "")
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		if r[1] == "" {
			fmt.Fprintf(w, "%s:\n", r[0])
			continue
		}
		fmt.Fprintf(w, "%-*s %s\n", width+1, r[0]+":", r[1])
	}
}

// fieldRows appends v's fields to rows as (label, value), a nested
// struct's name with no value.
func fieldRows(rows *[][2]string, v reflect.Value, indent string) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || strings.Contains(opts, "omitempty") && fv.IsZero() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		label := indent + strings.ReplaceAll(name, "_", " ")
		switch {
		case isText(fv):
			*rows = append(*rows, [2]string{label, text(fv)})
		case fv.Kind() == reflect.Struct:
			*rows = append(*rows, [2]string{label, ""})
			fieldRows(rows, fv, indent+"  ")
		default:
			for j := range fv.Len() {
				*rows = append(*rows, [2]string{fmt.Sprintf("%s[%d]", label, j), text(fv.Index(j))})
			}
		}
	}
}

// isText reports whether v prints as one value: a Stringer (hex, a time)
// or anything but a struct or a list.
func isText(v reflect.Value) bool {
	if _, ok := v.Interface().(fmt.Stringer); ok {
		return true
	}
	return v.Kind() != reflect.Struct && v.Kind() != reflect.Slice && v.Kind() != reflect.Array
}

// text is one value as Write shows it; times in RFC 3339.
func text(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Time:
		return x.Format(time.RFC3339)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}
