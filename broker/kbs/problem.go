package kbs

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ProblemPrefix is the type of every problem Trustee's KBS answers, before
// the problem's name (kbs/src/error.rs).
const ProblemPrefix = "https://github.com/confidential-containers/kbs/errors/"

// Problems, by the names of Trustee's error variants.
const (
	ProblemAttestation        = "AttestationError"
	ProblemInvalidRequestPath = "InvalidRequestPath"
	ProblemJwe                = "JweError"
	ProblemPolicyDeny         = "PolicyDeny"
	ProblemSerde              = "SerdeError"
	ProblemTokenNotFound      = "TokenNotFound"
	ProblemTokenVerifier      = "TokenVerifierError"
	ProblemResourceNotFound   = "PluginNotFound"
	ProblemInternal           = "PluginInternalError"
)

// Problem is an RFC 7807 problem as Trustee's KBS answers it: a type and
// a detail, with the status its type has there (401 for every problem
// but a path or resource that does not exist, 404).
type Problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
	// Status is the HTTP status it is answered with, not sent in the
	// body (Trustee sends none).
	Status int `json:"-"`
}

// NewProblem is the problem name with detail, at Trustee's status for it.
func NewProblem(name, detail string) *Problem {
	status := http.StatusUnauthorized
	switch name {
	case ProblemInvalidRequestPath, ProblemResourceNotFound:
		status = http.StatusNotFound
	}
	return &Problem{Type: ProblemPrefix + name, Detail: detail, Status: status}
}

// Name is the problem's name: its type after ProblemPrefix.
func (p *Problem) Name() string { return strings.TrimPrefix(p.Type, ProblemPrefix) }

// Error is the problem's detail.
func (p *Problem) Error() string { return fmt.Sprintf("%s (%d): %s", p.Name(), p.Status, p.Detail) }

// Write answers the problem.
func (p *Problem) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// DecodeProblem reads a problem answered with status: type and detail
// are required, unknown members ignored.
func DecodeProblem(r io.Reader, status int) (*Problem, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var p Problem
	if err := decodeLoose(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if p.Type == "" {
		return nil, fmt.Errorf("%w: a problem needs a type", ErrMessage)
	}
	p.Status = status
	return &p, nil
}
