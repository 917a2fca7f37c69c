package controllers

// A pass that undoes a change made in Stripe (a coupon applied in the
// Dashboard) reports BillingDrift=False/DriftCorrected in the status it
// writes at its end. That write often conflicts: the webhook server writes
// the status of the event announcing the change (or of the correction's own
// customer.subscription.updated event) at the same time. The pass is then
// requeued and the retry reads a Stripe the correction already fixed, finds
// nothing to correct and would report InSync: the record of a correction
// that did happen (Stripe answered the write) would be lost.
//
// So the reconciler remembers the correction it made for the generation it
// made it for, and a later pass that finds Stripe in sync reports it until
// the record is in status (the status then keeps it, see reportDrift), the
// spec changes or Stripe drifts again. Kept in memory only: after a restart
// a pass reports what it sees (InSync), which is still true of Stripe.

// correctionMark is the last correction a pass made.
type correctionMark struct {
	generation int64
	message    string
}

// noteCorrection remembers that this pass corrected drift (message is the
// condition message it reports).
func (s *subscriptionScope) noteCorrection(message string) {
	s.r.corrections.Store(s.obj.UID, correctionMark{generation: s.obj.Generation, message: message})
}

// forgetCorrection drops the remembered correction (Stripe drifted again,
// or status already holds the record).
func (s *subscriptionScope) forgetCorrection() {
	s.r.corrections.Delete(s.obj.UID)
}

// unrecordedCorrection returns the message of a correction this process made
// for the current generation whose record status does not hold yet.
func (s *subscriptionScope) unrecordedCorrection() (string, bool) {
	v, ok := s.r.corrections.Load(s.obj.UID)
	if !ok {
		return "", false
	}
	m := v.(correctionMark)
	if m.generation != s.obj.Generation {
		s.forgetCorrection()
		return "", false
	}
	return m.message, true
}
