package kubectlstripe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/billing"
)

// ExitError is an error with its own exit code: 2 when --fail-over
// holds a change back.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCodeOverLimit is the exit code when an immediate charge exceeds
// --fail-over.
const ExitCodeOverLimit = 2

// previewManifests are the manifests of one namespace.
type previewManifests struct {
	namespace string
	spec      billingv1alpha1.StripeBillingPreviewSpec
	// plans are the StripePlan manifests as read, validated against the
	// StripePlan CRD (server-side dry-run) before the preview is created.
	plans []*unstructured.Unstructured
}

func (o *options) previewCommand() *cobra.Command {
	var files []string
	var output, failOver string
	var timeout time.Duration
	var keep bool
	cmd := &cobra.Command{
		Use:   "preview -f FILE|DIR [--fail-over AMOUNT CURRENCY]",
		Short: "Print what StripeSubscription and StripePlan manifests would bill, without applying them",
		Long: `preview asks the operator what the StripeSubscription and StripePlan manifests in FILE or DIR would
bill: the charge they make at once, the next invoice, and what a plan's price change does to the
subscriptions on it. It creates a StripeBillingPreview in the manifests' namespace (the operator asks
Stripe's upcoming-invoice API; the Stripe key stays in the cluster), prints the answer and deletes it.
Nothing is written to Stripe or to the resources.

--fail-over AMOUNT CURRENCY exits with code 2 when any immediate charge in CURRENCY exceeds AMOUNT
(for example --fail-over 100.00 usd), so a pipeline can hold a large change for a person.`,
		Example: `  kubectl stripe preview -f subscription.yaml
  kubectl stripe preview -f manifests/ -o json
  kubectl stripe preview -f plan.yaml --fail-over 500.00 usd`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output, "table", "json", "yaml"); err != nil {
				return err
			}
			if len(files) == 0 {
				return errors.New("preview needs -f FILE or -f DIR")
			}
			limit, err := parseFailOver(failOver, args)
			if err != nil {
				return err
			}
			defNS, _, err := o.config.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return fmt.Errorf("finding the namespace: %w", err)
			}
			groups, err := readPreviewManifests(files, defNS)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var over []string
			for _, grp := range groups {
				p, err := o.runPreview(cmd.Context(), c, grp, timeout, keep)
				if err != nil {
					return err
				}
				if err := o.printPreview(p, output); err != nil {
					return err
				}
				if limit != nil {
					over = append(over, limit.exceeded(p)...)
				}
			}
			if len(over) > 0 {
				return &ExitError{Code: ExitCodeOverLimit, Err: fmt.Errorf("held back by --fail-over %s: %s",
					billing.FormatAmount(limit.amount, limit.currency), strings.Join(over, "; "))}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "Manifest file or directory (*.yaml, *.yml, *.json); repeatable.")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table, json or yaml.")
	cmd.Flags().StringVar(&failOver, "fail-over", "", "AMOUNT CURRENCY: exit with code 2 when an immediate charge in CURRENCY exceeds AMOUNT (a decimal, e.g. 100.00 usd).")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "How long to wait for the operator's answer.")
	cmd.Flags().BoolVar(&keep, "keep", false, "Leave the StripeBillingPreview in the cluster (it expires on its own).")
	return cmd
}

// failOverLimit is --fail-over: an amount in a currency's minor unit.
type failOverLimit struct {
	amount   int64
	currency string
}

// parseFailOver reads --fail-over AMOUNT CURRENCY: the currency is the
// command's one argument, or the flag holds both ("100.00 usd").
func parseFailOver(flag string, args []string) (*failOverLimit, error) {
	if flag == "" {
		if len(args) > 0 {
			return nil, fmt.Errorf("unexpected argument %q: preview takes manifests with -f", args[0])
		}
		return nil, nil
	}
	fields := strings.Fields(flag)
	if len(args) == 1 {
		fields = append(fields, args[0])
	}
	if len(fields) != 2 {
		return nil, fmt.Errorf("--fail-over needs AMOUNT CURRENCY, such as --fail-over 100.00 usd")
	}
	cur := strings.ToLower(fields[1])
	if len(cur) != 3 {
		return nil, fmt.Errorf("--fail-over: %q is not a three-letter currency code", fields[1])
	}
	amount, err := parseAmount(fields[0], cur)
	if err != nil {
		return nil, fmt.Errorf("--fail-over: %w", err)
	}
	return &failOverLimit{amount: amount, currency: cur}, nil
}

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// parseAmount reads a decimal amount exactly (no float) into the
// currency's minor unit: "100.00" usd is 10000, "500" jpy is 500.
func parseAmount(s, currency string) (int64, error) {
	if !decimalRE.MatchString(s) {
		return 0, fmt.Errorf("%q is not a non-negative decimal amount", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a non-negative decimal amount", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(billing.Exponent(currency))), nil)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q has more decimals than %s has (%d)", s, strings.ToUpper(currency), billing.Exponent(currency))
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return r.Num().Int64(), nil
}

// exceeded lists the immediate charges in the limit's currency above it:
// each subscription's, and each subscription a plan change charges.
func (l *failOverLimit) exceeded(p *billingv1alpha1.StripeBillingPreview) []string {
	var out []string
	for _, s := range p.Status.Subscriptions {
		if in := s.Immediate; in != nil && in.Currency == l.currency && in.AmountDue > l.amount {
			out = append(out, fmt.Sprintf("StripeSubscription %s/%s charges %s now", p.Namespace, s.Name, billing.FormatAmount(in.AmountDue, in.Currency)))
		}
	}
	for _, pl := range p.Status.Plans {
		for _, s := range pl.Subscriptions {
			if s.Currency == l.currency && s.ChargedNow > l.amount {
				out = append(out, fmt.Sprintf("StripePlan %s/%s charges %s now to StripeSubscription %s", p.Namespace, pl.Name, billing.FormatAmount(s.ChargedNow, s.Currency), s.Name))
			}
		}
	}
	return out
}

// readPreviewManifests reads the StripeSubscription and StripePlan
// manifests of the files and directories, grouped by namespace (defNS
// when a manifest has none). Other kinds are an error: a preview would
// silently leave them out.
func readPreviewManifests(paths []string, defNS string) ([]previewManifests, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	byNS := map[string]*previewManifests{}
	group := func(ns string) *previewManifests {
		if ns == "" {
			ns = defNS
		}
		if byNS[ns] == nil {
			byNS[ns] = &previewManifests{namespace: ns}
		}
		return byNS[ns]
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			gv := u.GroupVersionKind()
			if gv.Group != billingv1alpha1.GroupVersion.Group {
				return nil, fmt.Errorf("%s: %s %q is not a StripeSubscription or StripePlan; preview only those", f, gv.Kind, u.GetName())
			}
			switch gv.Kind {
			case "StripeSubscription":
				var s billingv1alpha1.StripeSubscription
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
					return nil, fmt.Errorf("%s: StripeSubscription %q: %w", f, u.GetName(), err)
				}
				g := group(s.Namespace)
				g.spec.Subscriptions = append(g.spec.Subscriptions, billingv1alpha1.PreviewSubscription{Name: s.Name, Spec: s.Spec})
			case "StripePlan":
				var p billingv1alpha1.StripePlan
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
					return nil, fmt.Errorf("%s: StripePlan %q: %w", f, u.GetName(), err)
				}
				// The preview keeps the manifest's spec as written (the
				// operator decodes it strictly): unknown fields are not
				// dropped here.
				raw, err := json.Marshal(u.Object["spec"])
				if err != nil {
					return nil, fmt.Errorf("%s: StripePlan %q: %w", f, u.GetName(), err)
				}
				g := group(p.Namespace)
				g.spec.Plans = append(g.spec.Plans, billingv1alpha1.PreviewPlan{Name: p.Name, Spec: runtime.RawExtension{Raw: raw}})
				g.plans = append(g.plans, u.DeepCopy())
			default:
				return nil, fmt.Errorf("%s: %s %q is not a StripeSubscription or StripePlan; preview only those", f, gv.Kind, u.GetName())
			}
		}
	}
	if len(byNS) == 0 {
		return nil, errors.New("no StripeSubscription or StripePlan manifest found")
	}
	out := make([]previewManifests, 0, len(byNS))
	for _, g := range byNS {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].namespace < out[j].namespace })
	return out, nil
}

// runPreview creates the preview, waits for the operator's answer and
// deletes it (unless keep).
func (o *options) runPreview(ctx context.Context, c client.Client, m previewManifests, timeout time.Duration, keep bool) (*billingv1alpha1.StripeBillingPreview, error) {
	if err := validatePlans(ctx, c, m); err != nil {
		return nil, err
	}
	p := &billingv1alpha1.StripeBillingPreview{ObjectMeta: metav1.ObjectMeta{Namespace: m.namespace, GenerateName: "preview-"}, Spec: m.spec}
	if err := c.Create(ctx, p); err != nil {
		return nil, fmt.Errorf("creating a StripeBillingPreview in namespace %s: %w", m.namespace, err)
	}
	if !keep {
		defer func() {
			// A fresh context: the answer may have come as the command's
			// context ended.
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.Delete(dctx, p)
		}()
	}
	key := client.ObjectKeyFromObject(p)
	err := wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, p); err != nil {
			return false, err
		}
		if s := meta.FindStatusCondition(p.Status.Conditions, billingv1alpha1.ConditionStalled); s != nil && s.Status == metav1.ConditionTrue && s.ObservedGeneration == p.Generation {
			return true, nil
		}
		r := meta.FindStatusCondition(p.Status.Conditions, billingv1alpha1.ConditionReady)
		return r != nil && r.Status == metav1.ConditionTrue && r.ObservedGeneration == p.Generation, nil
	})
	if err != nil {
		msg := ""
		if r := meta.FindStatusCondition(p.Status.Conditions, billingv1alpha1.ConditionReady); r != nil {
			msg = ": " + r.Message
		}
		return nil, fmt.Errorf("waiting for the operator to answer StripeBillingPreview %s/%s (is stripe-operator running?)%s: %w", p.Namespace, p.Name, msg, err)
	}
	if s := meta.FindStatusCondition(p.Status.Conditions, billingv1alpha1.ConditionStalled); s != nil && s.Status == metav1.ConditionTrue {
		return nil, fmt.Errorf("the operator refused the preview in namespace %s (%s): %s", p.Namespace, s.Reason, s.Message)
	}
	return p, nil
}

func (o *options) printPreview(p *billingv1alpha1.StripeBillingPreview, output string) error {
	if output != "table" {
		pr, err := o.objectPrinter(output)
		if err != nil {
			return err
		}
		return pr.PrintObj(p, o.streams.Out)
	}
	return printPreviewTable(o.streams, p)
}

func dateText(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

func signed(amount int64, currency string) string {
	if amount > 0 {
		return "+" + billing.FormatAmount(amount, currency)
	}
	return billing.FormatAmount(amount, currency)
}

func printLines(s genericiooptions.IOStreams, in *billingv1alpha1.InvoicePreview) error {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "  Line", Type: "string"}, {Name: "Price", Type: "string"}, {Name: "Qty", Type: "integer"}, {Name: "Amount", Type: "string"},
	}}
	for _, l := range in.Lines {
		desc := l.Description
		if l.Proration {
			desc += " (proration)"
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{"  " + desc, l.PriceID, l.Quantity, billing.FormatAmount(l.Amount, in.Currency)}})
	}
	return printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, s.Out)
}

func printPreviewTable(s genericiooptions.IOStreams, p *billingv1alpha1.StripeBillingPreview) error {
	st := &p.Status
	fmt.Fprintf(s.Out, "Preview in namespace %s, asked at %s (%d Stripe reads). Nothing was written to Stripe or to the resources.\n",
		p.Namespace, dateText(st.PreviewedAt), st.StripeCalls)
	for i := range st.Subscriptions {
		sp := &st.Subscriptions[i]
		what := "new subscription"
		if sp.SubscriptionID != "" {
			what = sp.SubscriptionID
		}
		fmt.Fprintf(s.Out, "\nStripeSubscription %s (%s, customer %s)\n", sp.Name, what, sp.CustomerID)
		if sp.Immediate == nil {
			fmt.Fprintln(s.Out, "Charged now: nothing")
		} else {
			fmt.Fprintf(s.Out, "Charged now: %s\n", billing.FormatAmount(sp.Immediate.AmountDue, sp.Immediate.Currency))
			if err := printLines(s, sp.Immediate); err != nil {
				return err
			}
		}
		if sp.Next == nil {
			fmt.Fprintln(s.Out, "Next invoice: none")
		} else {
			fmt.Fprintf(s.Out, "Next invoice: %s on %s\n", billing.FormatAmount(sp.Next.AmountDue, sp.Next.Currency), dateText(sp.Next.Date))
			if err := printLines(s, sp.Next); err != nil {
				return err
			}
		}
		if sp.EndsAt != nil {
			fmt.Fprintf(s.Out, "Ends: %s\n", dateText(sp.EndsAt))
		}
		for _, n := range sp.Notes {
			fmt.Fprintf(s.Out, "Note: %s\n", n)
		}
	}
	for i := range st.Plans {
		pp := &st.Plans[i]
		change := "price unchanged"
		if pp.PriceChanges {
			change = "new price"
			if pp.FromPriceID != "" {
				change = "new price replaces " + pp.FromPriceID
			}
		}
		fmt.Fprintf(s.Out, "\nStripePlan %s (%s; priceChangePolicy %s)\n", pp.Name, change, pp.Policy)
		if len(pp.Currencies) > 0 {
			t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
				{Name: "Currency", Type: "string"}, {Name: "Subscriptions", Type: "integer"}, {Name: "Move now", Type: "integer"},
				{Name: "Move at renewal", Type: "integer"}, {Name: "Kept", Type: "integer"}, {Name: "Charged now", Type: "string"},
				{Name: "Next renewals change", Type: "string"},
			}}
			for _, c := range pp.Currencies {
				t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{strings.ToUpper(c.Currency), c.Subscriptions, c.MovingNow, c.MovingAtNextRenewal, c.Kept,
					billing.FormatAmount(c.ChargedNow, c.Currency), signed(c.NextRenewalsChange, c.Currency)}})
			}
			if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, s.Out); err != nil {
				return err
			}
		}
		for _, n := range pp.Notes {
			fmt.Fprintf(s.Out, "Note: %s\n", n)
		}
	}
	fmt.Fprintln(s.Out)
	if len(st.ChargedNow) == 0 {
		fmt.Fprintln(s.Out, "Charged now in total: nothing")
		return nil
	}
	var parts []string
	for _, a := range st.ChargedNow {
		parts = append(parts, billing.FormatAmount(a.Amount, a.Currency))
	}
	fmt.Fprintf(s.Out, "Charged now in total, per currency: %s\n", strings.Join(parts, ", "))
	return nil
}

// validatePlans checks each StripePlan manifest against the StripePlan CRD
// itself (its schema and CEL rules) with a server-side dry-run create:
// nothing is persisted, and the user gets the CRD's own messages. The
// preview's spec.plans[].spec has no schema of its own (the CRD's CEL cost
// budget), so this is where a plan manifest meets its rules before the
// operator previews it. The manifest is created under a generated name so
// that a plan that exists already is validated too.
func validatePlans(ctx context.Context, c client.Client, m previewManifests) error {
	for _, u := range m.plans {
		name := u.GetName()
		obj := u.DeepCopy()
		obj.SetNamespace(m.namespace)
		obj.SetName("")
		obj.SetGenerateName("preview-dry-run-")
		obj.SetResourceVersion("")
		obj.SetUID("")
		delete(obj.Object, "status")
		if err := c.Create(ctx, obj, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			return fmt.Errorf("StripePlan %s/%s is refused by the StripePlan CRD (server-side dry-run): %w", m.namespace, name, err)
		}
	}
	return nil
}
