// Command kubectl-stripe is the stripe-operator kubectl plugin: it reads the
// billing report and the resources' conditions from the cluster and asks for
// an immediate billing audit. It never talks to Stripe and needs no Stripe
// key.
//
//	go install github.com/stripe-operator/stripe-operator/cmd/kubectl-stripe@latest
//	kubectl stripe report
//	kubectl stripe drift -A
//	kubectl stripe audit --now
//	kubectl stripe preview -f subscription.yaml --fail-over 100.00 usd
package main

import (
	"errors"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/stripe-operator/stripe-operator/internal/kubectlstripe"
)

func main() {
	cmd := kubectlstripe.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		var exit *kubectlstripe.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		os.Exit(1)
	}
}
