package stripe

import (
	"context"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/stripe-operator/stripe-operator/internal/identity"
)

// Coupon is the part of a Stripe coupon the operator reads
// (https://docs.stripe.com/api/coupons/object). Stripe coupons are
// immutable except for name and metadata (and currency_options' amounts):
// other terms need a new coupon.
type Coupon struct {
	ID   string
	Name string
	// PercentOff is the percentage as an exact decimal string ("25",
	// "12.5"), "" for an amount-off coupon. Stripe keeps two decimal places
	// (https://docs.stripe.com/changelog/2018-07-27/coupons-use-floats-specify-percent-off).
	PercentOff string
	// AmountOff and Currency: the amount in minor units taken off.
	AmountOff int64
	Currency  string
	// CurrencyOptions are the amounts off in other currencies.
	CurrencyOptions map[string]int64
	// Duration is once, repeating or forever; DurationInMonths is set for
	// repeating.
	Duration         string
	DurationInMonths int64
	MaxRedemptions   int64
	// RedeemBy is Unix seconds, 0 when unset.
	RedeemBy int64
	// AppliesToProducts are the products the coupon is restricted to
	// (applies_to.products), empty for every product.
	AppliesToProducts []string
	TimesRedeemed     int64
	Valid             bool
	Metadata          map[string]string
	Created           int64
	Deleted           bool
}

// CouponCreateParams creates a coupon; PercentOff (an exact decimal
// string) or AmountOff with Currency.
type CouponCreateParams struct {
	Name              string
	PercentOff        string
	AmountOff         int64
	Currency          string
	CurrencyOptions   map[string]int64
	Duration          string
	DurationInMonths  int64
	MaxRedemptions    int64
	RedeemBy          int64
	AppliesToProducts []string
	Metadata          map[string]string
}

// CouponUpdateParams updates what Stripe lets change on a coupon
// (https://docs.stripe.com/api/coupons/update): name and metadata.
type CouponUpdateParams struct {
	Name     *string
	Metadata map[string]string
}

// PromotionCode is the part of a Stripe promotion code the operator reads
// (https://docs.stripe.com/api/promotion_codes/object).
type PromotionCode struct {
	ID       string
	Code     string
	CouponID string
	Active   bool
	// ExpiresAt is Unix seconds, 0 when unset.
	ExpiresAt             int64
	MaxRedemptions        int64
	TimesRedeemed         int64
	FirstTimeTransaction  bool
	MinimumAmount         int64
	MinimumAmountCurrency string
	Metadata              map[string]string
	Created               int64
}

// PromotionCodeCreateParams creates a promotion code on a coupon.
type PromotionCodeCreateParams struct {
	CouponID              string
	Code                  string
	Active                bool
	ExpiresAt             int64
	MaxRedemptions        int64
	FirstTimeTransaction  bool
	MinimumAmount         int64
	MinimumAmountCurrency string
	Metadata              map[string]string
}

// PromotionCodeUpdateParams updates what Stripe lets change on a promotion
// code (https://docs.stripe.com/api/promotion_codes/update): active and
// metadata.
type PromotionCodeUpdateParams struct {
	Active   *bool
	Metadata map[string]string
}

// Discount is a discount applied to a subscription
// (https://docs.stripe.com/api/discounts/object).
type Discount struct {
	ID       string
	CouponID string
	// Coupon is the discount's coupon as embedded in the discount.
	Coupon *Coupon
	// PromotionCodeID is the promotion code applied, "" when the coupon
	// was applied directly.
	PromotionCodeID string
	// Start and End are Unix seconds; End is 0 for a coupon of duration
	// once or forever.
	Start, End int64
}

// Coupons is the coupon and promotion-code part of the Stripe API the
// operator uses.
type Coupons interface {
	// GetCoupon reads a coupon; a deleted or unknown one is a NotFound
	// *Error.
	GetCoupon(ctx context.Context, id string) (*Coupon, error)
	// ListCoupons lists coupons created at or after createdAfter (zero:
	// all), newest first (a strongly consistent list; coupons have no
	// Search API).
	ListCoupons(ctx context.Context, createdAfter time.Time) ([]*Coupon, error)
	// CreateCoupon creates a coupon under the key of intent ("": fresh).
	CreateCoupon(ctx context.Context, owner Owner, intent string, p CouponCreateParams) (*Coupon, error)
	UpdateCoupon(ctx context.Context, owner Owner, id string, p CouponUpdateParams) (*Coupon, error)
	// DeleteCoupon deletes a coupon: it can no longer be redeemed, and
	// discounts already made from it are unaffected
	// (https://docs.stripe.com/api/coupons/delete).
	DeleteCoupon(ctx context.Context, owner Owner, id string) error

	GetPromotionCode(ctx context.Context, id string) (*PromotionCode, error)
	// ListPromotionCodes lists the promotion codes of a coupon (couponID
	// set) or those with a code string (code set), active ones only when
	// activeOnly.
	ListPromotionCodes(ctx context.Context, couponID, code string, activeOnly bool) ([]*PromotionCode, error)
	CreatePromotionCode(ctx context.Context, owner Owner, p PromotionCodeCreateParams) (*PromotionCode, error)
	UpdatePromotionCode(ctx context.Context, owner Owner, id string, p PromotionCodeUpdateParams) (*PromotionCode, error)
}

// couponExpand: applies_to and currency_options are includable fields,
// sent only when expanded (https://docs.stripe.com/api/coupons/object).
var couponExpand = []string{"applies_to", "currency_options"}

// percentText renders Stripe's percent_off float as its shortest exact
// decimal text: a two-decimal value round-trips ("12.5", "33.33").
func percentText(f float64) string {
	if f == 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func toCoupon(c *stripego.Coupon) *Coupon {
	out := &Coupon{ID: c.ID, Name: c.Name, PercentOff: percentText(c.PercentOff), AmountOff: c.AmountOff,
		Currency: string(c.Currency), Duration: string(c.Duration), DurationInMonths: c.DurationInMonths,
		MaxRedemptions: c.MaxRedemptions, RedeemBy: c.RedeemBy, TimesRedeemed: c.TimesRedeemed, Valid: c.Valid,
		Metadata: c.Metadata, Created: c.Created, Deleted: c.Deleted}
	if c.AppliesTo != nil {
		out.AppliesToProducts = append(out.AppliesToProducts, c.AppliesTo.Products...)
	}
	for cur, o := range c.CurrencyOptions {
		if o == nil {
			continue
		}
		if out.CurrencyOptions == nil {
			out.CurrencyOptions = map[string]int64{}
		}
		out.CurrencyOptions[cur] = o.AmountOff
	}
	return out
}

func toPromotionCode(p *stripego.PromotionCode) *PromotionCode {
	out := &PromotionCode{ID: p.ID, Code: p.Code, Active: p.Active, ExpiresAt: p.ExpiresAt, MaxRedemptions: p.MaxRedemptions,
		TimesRedeemed: p.TimesRedeemed, Metadata: p.Metadata, Created: p.Created}
	if p.Coupon != nil {
		out.CouponID = p.Coupon.ID
	}
	if r := p.Restrictions; r != nil {
		out.FirstTimeTransaction, out.MinimumAmount, out.MinimumAmountCurrency = r.FirstTimeTransaction, r.MinimumAmount, string(r.MinimumAmountCurrency)
	}
	return out
}

func toDiscount(d *stripego.Discount) *Discount {
	if d == nil || d.ID == "" && d.Coupon == nil {
		return nil
	}
	out := &Discount{ID: d.ID, Start: d.Start, End: d.End}
	if d.Coupon != nil {
		out.CouponID = d.Coupon.ID
		if d.Coupon.Duration != "" {
			out.Coupon = toCoupon(d.Coupon)
		}
	}
	if d.PromotionCode != nil {
		out.PromotionCodeID = d.PromotionCode.ID
	}
	return out
}

// GetCoupon implements Coupons.
func (c *Client) GetCoupon(ctx context.Context, id string) (*Coupon, error) {
	var out *Coupon
	err := c.call(ctx, "get coupon", func(ctx context.Context) error {
		cp, err := c.getCoupon(ctx, id)
		if err != nil {
			return err
		}
		out = toCoupon(cp)
		return nil
	})
	return out, err
}

func (c *Client) getCoupon(ctx context.Context, id string) (*stripego.Coupon, error) {
	p := &stripego.CouponParams{}
	setup(ctx, &p.Params, "", couponExpand...)
	return c.sc().Coupons.Get(id, p)
}

// ListCoupons implements Coupons.
func (c *Client) ListCoupons(ctx context.Context, createdAfter time.Time) ([]*Coupon, error) {
	var out []*Coupon
	err := c.call(ctx, "list coupons", func(ctx context.Context) error {
		p := &stripego.CouponListParams{}
		p.Context = ctx
		for _, e := range couponExpand {
			p.AddExpand("data." + e)
		}
		p.Limit = stripego.Int64(100)
		if !createdAfter.IsZero() {
			p.CreatedRange = &stripego.RangeQueryParams{GreaterThanOrEqual: createdAfter.Unix()}
		}
		it := c.sc().Coupons.List(p)
		for it.Next() {
			out = append(out, toCoupon(it.Coupon()))
		}
		return it.Err()
	})
	return out, err
}

// CreateCoupon implements Coupons. percent_off is sent as the exact decimal
// text of the spec (never through a float).
func (c *Client) CreateCoupon(ctx context.Context, owner Owner, intent string, p CouponCreateParams) (*Coupon, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	var out *Coupon
	err := c.call(ctx, "create coupon", func(ctx context.Context) error {
		sp := &stripego.CouponParams{Duration: stripego.String(p.Duration)}
		if p.Name != "" {
			sp.Name = stripego.String(p.Name)
		}
		if p.PercentOff != "" {
			sp.AddExtra("percent_off", p.PercentOff)
		} else {
			sp.AmountOff, sp.Currency = stripego.Int64(p.AmountOff), stripego.String(p.Currency)
		}
		for cur, amt := range p.CurrencyOptions {
			if sp.CurrencyOptions == nil {
				sp.CurrencyOptions = map[string]*stripego.CouponCurrencyOptionsParams{}
			}
			sp.CurrencyOptions[cur] = &stripego.CouponCurrencyOptionsParams{AmountOff: stripego.Int64(amt)}
		}
		if p.Duration == "repeating" {
			sp.DurationInMonths = stripego.Int64(p.DurationInMonths)
		}
		if p.MaxRedemptions > 0 {
			sp.MaxRedemptions = stripego.Int64(p.MaxRedemptions)
		}
		if p.RedeemBy > 0 {
			sp.RedeemBy = stripego.Int64(p.RedeemBy)
		}
		if len(p.AppliesToProducts) > 0 {
			sp.AppliesTo = &stripego.CouponAppliesToParams{Products: stripego.StringSlice(p.AppliesToProducts)}
		}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, createKey(owner, "coupon-create", intent), couponExpand...)
		cp, err := c.sc().Coupons.New(sp)
		if err != nil {
			return err
		}
		cp, err = current(cp.LastResponse, cp, func() (*stripego.Coupon, error) { return c.getCoupon(ctx, cp.ID) })
		if err != nil {
			return err
		}
		out = toCoupon(cp)
		return nil
	})
	return out, err
}

// UpdateCoupon implements Coupons.
func (c *Client) UpdateCoupon(ctx context.Context, owner Owner, id string, p CouponUpdateParams) (*Coupon, error) {
	var out *Coupon
	err := c.call(ctx, "update coupon", func(ctx context.Context) error {
		sp := &stripego.CouponParams{Name: p.Name}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, attemptKey(owner, "coupon-update"), couponExpand...)
		cp, err := c.sc().Coupons.Update(id, sp)
		if err != nil {
			return err
		}
		cp, err = current(cp.LastResponse, cp, func() (*stripego.Coupon, error) { return c.getCoupon(ctx, id) })
		if err != nil {
			return err
		}
		out = toCoupon(cp)
		return nil
	})
	return out, err
}

// DeleteCoupon implements Coupons.
func (c *Client) DeleteCoupon(ctx context.Context, _ Owner, id string) error {
	return c.call(ctx, "delete coupon", func(ctx context.Context) error {
		p := &stripego.CouponParams{}
		setup(ctx, &p.Params, "")
		_, err := c.sc().Coupons.Del(id, p)
		return err
	})
}

func (c *Client) getPromotionCode(ctx context.Context, id string) (*stripego.PromotionCode, error) {
	p := &stripego.PromotionCodeParams{}
	setup(ctx, &p.Params, "")
	return c.sc().PromotionCodes.Get(id, p)
}

// GetPromotionCode implements Coupons.
func (c *Client) GetPromotionCode(ctx context.Context, id string) (*PromotionCode, error) {
	var out *PromotionCode
	err := c.call(ctx, "get promotion code", func(ctx context.Context) error {
		pc, err := c.getPromotionCode(ctx, id)
		if err != nil {
			return err
		}
		out = toPromotionCode(pc)
		return nil
	})
	return out, err
}

// ListPromotionCodes implements Coupons.
func (c *Client) ListPromotionCodes(ctx context.Context, couponID, code string, activeOnly bool) ([]*PromotionCode, error) {
	var out []*PromotionCode
	err := c.call(ctx, "list promotion codes", func(ctx context.Context) error {
		p := &stripego.PromotionCodeListParams{}
		p.Context = ctx
		p.Limit = stripego.Int64(100)
		if couponID != "" {
			p.Coupon = stripego.String(couponID)
		}
		if code != "" {
			p.Code = stripego.String(code)
		}
		if activeOnly {
			p.Active = stripego.Bool(true)
		}
		it := c.sc().PromotionCodes.List(p)
		for it.Next() {
			out = append(out, toPromotionCode(it.PromotionCode()))
		}
		return it.Err()
	})
	return out, err
}

// CreatePromotionCode implements Coupons. The caller lists the coupon's
// codes right before (a strongly consistent list), so each attempt gets a
// fresh key.
func (c *Client) CreatePromotionCode(ctx context.Context, owner Owner, p PromotionCodeCreateParams) (*PromotionCode, error) {
	p.Metadata = identity.Metadata(owner, p.Metadata)
	var out *PromotionCode
	err := c.call(ctx, "create promotion code", func(ctx context.Context) error {
		sp := &stripego.PromotionCodeParams{Coupon: stripego.String(p.CouponID), Code: stripego.String(p.Code), Active: stripego.Bool(p.Active)}
		if p.ExpiresAt > 0 {
			sp.ExpiresAt = stripego.Int64(p.ExpiresAt)
		}
		if p.MaxRedemptions > 0 {
			sp.MaxRedemptions = stripego.Int64(p.MaxRedemptions)
		}
		if p.FirstTimeTransaction || p.MinimumAmount > 0 {
			sp.Restrictions = &stripego.PromotionCodeRestrictionsParams{}
			if p.FirstTimeTransaction {
				sp.Restrictions.FirstTimeTransaction = stripego.Bool(true)
			}
			if p.MinimumAmount > 0 {
				sp.Restrictions.MinimumAmount = stripego.Int64(p.MinimumAmount)
				sp.Restrictions.MinimumAmountCurrency = stripego.String(strings.ToLower(p.MinimumAmountCurrency))
			}
		}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, attemptKey(owner, "promotion-code-create"))
		pc, err := c.sc().PromotionCodes.New(sp)
		if err != nil {
			return err
		}
		out = toPromotionCode(pc)
		return nil
	})
	return out, err
}

// UpdatePromotionCode implements Coupons.
func (c *Client) UpdatePromotionCode(ctx context.Context, owner Owner, id string, p PromotionCodeUpdateParams) (*PromotionCode, error) {
	var out *PromotionCode
	err := c.call(ctx, "update promotion code", func(ctx context.Context) error {
		sp := &stripego.PromotionCodeParams{Active: p.Active}
		setMetadata(&sp.Params, p.Metadata)
		setup(ctx, &sp.Params, attemptKey(owner, "promotion-code-update"))
		pc, err := c.sc().PromotionCodes.Update(id, sp)
		if err != nil {
			return err
		}
		pc, err = current(pc.LastResponse, pc, func() (*stripego.PromotionCode, error) { return c.getPromotionCode(ctx, id) })
		if err != nil {
			return err
		}
		out = toPromotionCode(pc)
		return nil
	})
	return out, err
}

// DeleteSubscriptionDiscount removes the discount of a subscription
// (https://docs.stripe.com/api/discounts/subscription_delete). Removing a
// discount bills nothing by itself; later invoices are not discounted.
func (c *Client) DeleteSubscriptionDiscount(ctx context.Context, _ Owner, id string) error {
	return c.call(ctx, "delete subscription discount", func(ctx context.Context) error {
		p := &stripego.SubscriptionDeleteDiscountParams{}
		setup(ctx, &p.Params, "")
		_, err := c.sc().Subscriptions.DeleteDiscount(id, p)
		return err
	})
}
