// Package kubectlstripe is the `kubectl stripe` plugin: report, drift,
// audit --now and preview. It follows kubectl plugin conventions (kubeconfig
// flags from cli-runtime's genericclioptions, output through cli-runtime
// printers) and talks only to the cluster: it never needs a Stripe key (a
// preview is a StripeBillingPreview the operator answers).
package kubectlstripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1alpha1 "github.com/stripe-operator/stripe-operator/api/v1alpha1"
	"github.com/stripe-operator/stripe-operator/internal/kinds"
)

// billingKindNames names the billing kinds of the table, e.g. "A, B and C".
func billingKindNames() string {
	var names []string
	for _, k := range kinds.BillingKinds() {
		names = append(names, k.Name)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// options are the flags every subcommand shares.
type options struct {
	config   *genericclioptions.ConfigFlags
	streams  genericiooptions.IOStreams
	instance string
	scheme   *runtime.Scheme
}

// NewCommand builds `kubectl stripe` and its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{config: genericclioptions.NewConfigFlags(true), streams: streams, scheme: runtime.NewScheme()}
	_ = clientgoscheme.AddToScheme(o.scheme)
	_ = billingv1alpha1.AddToScheme(o.scheme)
	root := &cobra.Command{
		Use:           "kubectl-stripe",
		Short:         "Read stripe-operator's billing report, revenue and drift, ask for a billing audit, and preview what a change would bill",
		Long:          "kubectl stripe reads the stripe-operator billing report and the conditions of " + billingKindNames() + " resources, and previews what StripeSubscription and StripePlan manifests would bill (through a StripeBillingPreview the operator answers). It talks only to the Kubernetes API server and never needs a Stripe key.",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	o.config.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&o.instance, "instance", "default", "Operator instance whose StripeBillingReport to use (the operator's --instance-name).")
	root.AddCommand(o.reportCommand(), o.driftCommand(), o.auditCommand(), o.previewCommand())
	root.AddCommand(o.revenueCommand())
	return root
}

func (o *options) client() (client.Client, error) {
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

func (o *options) getReport(ctx context.Context, c client.Client) (*billingv1alpha1.StripeBillingReport, error) {
	r := &billingv1alpha1.StripeBillingReport{}
	if err := c.Get(ctx, types.NamespacedName{Name: o.instance}, r); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no StripeBillingReport %q: is stripe-operator running with --instance-name=%s?", o.instance, o.instance)
		}
		return nil, fmt.Errorf("reading StripeBillingReport %q: %w", o.instance, err)
	}
	return r, nil
}

// objectPrinter prints an object as JSON or YAML with its apiVersion and
// kind set.
func (o *options) objectPrinter(format string) (printers.ResourcePrinter, error) {
	p, err := genericclioptions.NewJSONYamlPrintFlags().ToPrinter(format)
	if err != nil {
		return nil, err
	}
	return printers.NewTypeSetter(o.scheme).ToPrinter(p), nil
}

func checkFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unsupported output format %q: use one of %s", format, strings.Join(allowed, ", "))
}

func (o *options) reportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Print the billing report: counts per Stripe kind and class, and the objects that are not Managed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output, "table", "json", "yaml"); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := o.getReport(cmd.Context(), c)
			if err != nil {
				return err
			}
			if output != "table" {
				p, err := o.objectPrinter(output)
				if err != nil {
					return err
				}
				return p.PrintObj(r, o.streams.Out)
			}
			return printReport(o.streams, r, time.Now())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table, json or yaml.")
	return cmd
}

func conditionText(conds []metav1.Condition, t string) string {
	c := meta.FindStatusCondition(conds, t)
	if c == nil {
		return "Unknown"
	}
	return fmt.Sprintf("%s (%s) %s", c.Status, c.Reason, c.Message)
}

func age(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return duration.HumanDuration(now.Sub(t.Time)) + " ago"
}

func printReport(s genericiooptions.IOStreams, r *billingv1alpha1.StripeBillingReport, now time.Time) error {
	st := &r.Status
	fmt.Fprintf(s.Out, "Billing report %q: last audit %s, %d Stripe calls\n", r.Name, age(st.LastAuditTime, now), st.LastAuditCalls)
	fmt.Fprintf(s.Out, "Ready: %s\n", conditionText(st.Conditions, billingv1alpha1.ConditionReady))
	fmt.Fprintf(s.Out, "Clean: %s\n\n", conditionText(st.Conditions, billingv1alpha1.ConditionClean))

	counts := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Kind", Type: "string"}, {Name: "Managed", Type: "integer"}, {Name: "Orphaned (expected)", Type: "integer"},
		{Name: "Unexplained", Type: "integer"}, {Name: "Missing", Type: "integer"}, {Name: "Duplicate", Type: "integer"}, {Name: "Drifted", Type: "integer"},
	}}
	row := func(kind string, c billingv1alpha1.BillingCounts) metav1.TableRow {
		return metav1.TableRow{Cells: []any{kind, c.Managed, c.OrphanedExpected, c.OrphanedUnexplained, c.Missing, c.Duplicate, c.Drifted}}
	}
	for _, c := range st.Counts {
		counts.Rows = append(counts.Rows, row(c.Kind, c.BillingCounts))
	}
	counts.Rows = append(counts.Rows, row("total", st.Totals))
	if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(counts, s.Out); err != nil {
		return err
	}
	if n := st.Totals; n == (billingv1alpha1.BillingCounts{}) {
		fmt.Fprintln(s.Out, "\nThe last audit audited 0 objects: no Stripe object carries this instance's identity and no resource records one.")
		return nil
	}
	if len(st.Entries) == 0 {
		fmt.Fprintln(s.Out, "\nEvery audited Stripe object is Managed.")
		return nil
	}
	fmt.Fprintln(s.Out)
	entries := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Class", Type: "string"}, {Name: "Kind", Type: "string"}, {Name: "Stripe ID", Type: "string"},
		{Name: "Resource", Type: "string"}, {Name: "Since", Type: "string"}, {Name: "Message", Type: "string"},
	}}
	for _, e := range st.Entries {
		res := ""
		if e.Name != "" {
			res = e.ResourceKind + " " + e.Namespace + "/" + e.Name
		}
		entries.Rows = append(entries.Rows, metav1.TableRow{Cells: []any{string(e.Class), e.Kind, e.StripeID, res, age(e.Since, now), e.Message}})
	}
	if err := printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(entries, s.Out); err != nil {
		return err
	}
	if st.OmittedEntries > 0 {
		fmt.Fprintf(s.Out, "... and %d more (the report lists the first %d).\n", st.OmittedEntries, len(st.Entries))
	}
	return nil
}

// driftRow is one resource condition worth attention.
type driftRow struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Condition string `json:"condition"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

func (o *options) driftCommand() *cobra.Command {
	var all bool
	var output string
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "List resources whose Stripe objects drifted (BillingDrift) or whose payment failed (PaymentFailed), with their messages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output, "table", "json"); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !all {
				ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
				if err != nil {
					return fmt.Errorf("finding the namespace: %w", err)
				}
				opts = append(opts, client.InNamespace(ns))
			}
			rows, err := driftRows(cmd.Context(), c, opts...)
			if err != nil {
				return err
			}
			if output == "json" {
				if rows == nil {
					rows = []driftRow{}
				}
				enc := json.NewEncoder(o.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(o.streams.Out, "No drift and no failed payments.")
				return nil
			}
			t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
				{Name: "Namespace", Type: "string"}, {Name: "Kind", Type: "string"}, {Name: "Name", Type: "string"},
				{Name: "Condition", Type: "string"}, {Name: "Reason", Type: "string"}, {Name: "Message", Type: "string"},
			}}
			for _, r := range rows {
				t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{r.Namespace, r.Kind, r.Name, r.Condition, r.Reason, r.Message}})
			}
			return printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, o.streams.Out)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List across all namespaces.")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "Output format: table or json.")
	return cmd
}

// driftRows collects BillingDrift True, PaymentFailed True, and Ready False
// for reason Drifted (customers and plans in Observe mode).
func driftRows(ctx context.Context, c client.Client, opts ...client.ListOption) ([]driftRow, error) {
	var rows []driftRow
	add := func(kind string, obj metav1.Object, conds []metav1.Condition) {
		for _, cond := range conds {
			switch {
			case (cond.Type == billingv1alpha1.ConditionBillingDrift || cond.Type == billingv1alpha1.ConditionPaymentFailed) && cond.Status == metav1.ConditionTrue,
				cond.Type == billingv1alpha1.ConditionReady && cond.Status == metav1.ConditionFalse && cond.Reason == billingv1alpha1.ReasonDrifted:
				rows = append(rows, driftRow{Namespace: obj.GetNamespace(), Kind: kind, Name: obj.GetName(), Condition: cond.Type, Reason: cond.Reason, Message: cond.Message})
			}
		}
	}
	lists := make([]client.ObjectList, 0, len(kinds.BillingKinds()))
	var errs []error
	for _, k := range kinds.BillingKinds() {
		l := k.NewList()
		if err := c.List(ctx, l, opts...); err != nil {
			errs = append(errs, fmt.Errorf("listing %ss: %w", k.Name, err))
		}
		lists = append(lists, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for i, k := range kinds.BillingKinds() {
		for _, o := range k.Items(lists[i]) {
			add(k.Name, o, o.GetConditions())
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Name < b.Name
	})
	return rows, nil
}

func (o *options) auditCommand() *cobra.Command {
	var now, waitForIt bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "audit --now",
		Short: "Ask the operator for an immediate billing audit (through an annotation on the report)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !now {
				return errors.New("audit needs --now: the operator audits every --audit-period on its own; --now asks for one at once")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := o.getReport(ctx, c)
			if err != nil {
				return err
			}
			value := time.Now().UTC().Format(time.RFC3339Nano)
			patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, billingv1alpha1.AnnotationAuditNow, value)))
			if err := c.Patch(ctx, r, patch); err != nil {
				return fmt.Errorf("annotating StripeBillingReport %q: %w", o.instance, err)
			}
			fmt.Fprintf(o.streams.Out, "Asked for a billing audit of instance %q (%s=%s).\n", o.instance, billingv1alpha1.AnnotationAuditNow, value)
			if !waitForIt {
				return nil
			}
			err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
				r, err = o.getReport(ctx, c)
				if err != nil {
					return false, err
				}
				return r.Status.LastAuditRequest == value, nil
			})
			if err != nil {
				return fmt.Errorf("waiting for the audit: %w", err)
			}
			fmt.Fprintln(o.streams.Out)
			return printReport(o.streams, r, time.Now())
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "Audit now.")
	cmd.Flags().BoolVar(&waitForIt, "wait", false, "Wait for the audit to finish and print the report.")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "How long --wait waits.")
	return cmd
}
