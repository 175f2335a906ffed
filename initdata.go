package ampoule

import (
	"crypto/subtle"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// namedByInitData refuses a run whose init-data (Config.InitData) does
// not name its bundle's measurement under its profile: a VM launched for
// one bundle runs no other.
func (r *run) namedByInitData(b *loader.Bundle) error {
	if r.cfg.InitData == nil {
		return nil
	}
	doc, err := initdata.Decode(r.cfg.InitData)
	if err != nil {
		return errcode.Errorf(errcode.InitDataInvalid, "%v", err)
	}
	if doc.Profile != r.profile.Name {
		return errcode.Errorf(errcode.InitDataOtherBundle, "the init-data names the profile %s, and the run is under %s", doc.Profile, r.profile.Name)
	}
	if mm := loader.Measure(b, r.profile.Name); doc.MeasurementBytes() != mm {
		return errcode.Errorf(errcode.InitDataOtherBundle, "the init-data names the measurement %s, and the bundle's is %s", doc.Measurement, mm)
	}
	if r.kind == tee.KindSim {
		r.warn(WarningInitDataUnbound)
	}
	return nil
}

// judgeInitData checks the run's own evidence, straight from its TEE,
// against the init-data it was handed: an SEV-SNP report's HOST_DATA must
// be the document's SHA-256, a TDX quote's MRCONFIGID its SHA-384, or the
// host handed the launcher a document other than the VM's.
func (r *run) judgeInitData(kind string, ev tee.Evidence) error {
	if r.cfg.InitData == nil {
		return nil
	}
	var got, want []byte
	switch kind {
	case tee.KindSNP:
		hd, err := snp.ReportHostData(ev.Raw)
		if err != nil {
			return errcode.Errorf(errcode.TEEUnavailable, "reading the run's own %s evidence: %v", kind, err)
		}
		d := initdata.HostData(r.cfg.InitData)
		got, want = hd[:], d[:]
	case tee.KindTDX:
		id, err := tdx.QuoteMRConfigID(ev.Raw)
		if err != nil {
			return errcode.Errorf(errcode.TEEUnavailable, "reading the run's own %s evidence: %v", kind, err)
		}
		d := initdata.MRConfigID(r.cfg.InitData)
		got, want = id[:], d[:]
	default:
		// The simulator has no launch field; namedByInitData warned.
		return nil
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		field := map[string]string{tee.KindSNP: "HOST_DATA", tee.KindTDX: "MRCONFIGID"}[kind]
		return errcode.Errorf(errcode.InitDataMismatch, "the %s report's %s is %x, and the init-data's digest %x", kind, field, got, want)
	}
	return nil
}
