# stripe-operator Makefile (kubebuilder v4 shape: tools pinned into ./bin).

IMG ?= stripe-operator:dev
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest
STRIPE_MOCK ?= $(LOCALBIN)/stripe-mock

CONTROLLER_TOOLS_VERSION ?= v0.23.0
STRIPE_MOCK_VERSION ?= v0.203.0
# setup-envtest's release branch follows controller-runtime's minor version.
ENVTEST_VERSION ?= $(shell go list -m -f "{{ .Version }}" sigs.k8s.io/controller-runtime | awk -F'[v.]' '{printf "release-%d.%d", $$2, $$3}')
# The envtest Kubernetes version is derived from go.mod's k8s.io/api (v0.37.2 -> 1.37.2).
ENVTEST_K8S_VERSION ?= $(shell go list -m -f "{{ .Version }}" k8s.io/api | awk -F'[v.]' '{printf "1.%d.%d", $$3, $$4}')

TEST_TIMEOUT ?= 40m
GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	if [ -d webhookserver ]; then $(CONTROLLER_GEN) rbac:roleName=webhook-server-role paths="./webhookserver/..." output:rbac:artifacts:config=config/rbac/webhookserver; fi
	$(MAKE) --no-print-directory chart-files

CHART_DIR ?= charts/stripe-operator

.PHONY: chart-files
chart-files: ## Copy the generated CRDs and RBAC rules, the dashboard and the alert rules into the Helm chart.
	rm -f $(CHART_DIR)/files/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/files/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/rbac/manager-role.yaml
	cp config/rbac/webhookserver/role.yaml $(CHART_DIR)/files/rbac/webhook-server-role.yaml
	cp config/prometheus/prometheusrule.yaml $(CHART_DIR)/files/monitoring/prometheusrule.yaml
	cp config/prometheus/dashboard.json $(CHART_DIR)/files/monitoring/dashboard.json

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files differ from the committed ones.
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api config charts)" || { git status --porcelain -- api config charts; echo "untracked generated files: commit them"; exit 1; }

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: envtest
envtest: ## Provide kube-apiserver, etcd and kubectl for envtest (cached, download, or build from source).
	@$(MAKE) --no-print-directory setup-envtest >/dev/null 2>&1 || true
	@hack/envtest-assets.sh $(ENVTEST_K8S_VERSION) $(SETUP_ENVTEST) >/dev/null

.PHONY: verify-docs
verify-docs: ## Check that every relative link and #anchor in README.md and docs/ (and every alert's runbook_url) resolves.
	go test -count=1 ./hack/verifydocs/

.PHONY: test-unit
test-unit: ## The controllers' tests of pure functions, with no envtest (-short skips the tests that need an API server; one that starts envtest anyway fails).
	KUBEBUILDER_ASSETS=/nonexistent/envtest-not-needed go test -short -count=1 ./controllers/

.PHONY: test
test: verify-generated verify-docs test-unit vet envtest stripe-mock ## Run all tests: unit, envtest integration, contract tests against stripe-mock.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(ENVTEST_K8S_VERSION) $(SETUP_ENVTEST))" \
	STRIPE_MOCK_BIN="$(STRIPE_MOCK)" \
	BILLING_SCENARIO_REPORT="$(CURDIR)/bin/billing-scenarios.txt" \
	go test -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) ./...
	@echo "Billing scenarios (controllers/testdata/billing):" && cat bin/billing-scenarios.txt

.PHONY: test-stripe
test-stripe: envtest ## One lifecycle through the operator against Stripe's test mode (needs STRIPE_TEST_API_KEY=sk_test_...; skipped without it).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(ENVTEST_K8S_VERSION) $(SETUP_ENVTEST))" \
	STRIPE_E2E_REQUIRE_KEY=1 go test -count=1 -timeout 20m -v -run TestLifecycle ./test/stripe/

.PHONY: test-contract
test-contract: stripe-mock ## Contract tests: every request shape through internal/stripe against stripe-mock and the fake.
	STRIPE_MOCK_BIN="$(STRIPE_MOCK)" go test -count=1 -run 'Contract' ./internal/stripe/...

.PHONY: bench
bench: envtest ## Benchmarks, then every ratio next to its limit (hack/benchratios).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(ENVTEST_K8S_VERSION) $(SETUP_ENVTEST))" \
	go test -run '^$$' -bench . -benchmem -benchtime=2s -timeout 60m ./internal/stripe/... ./webhookserver/... ./controllers/... ./test/memory/... \
	| go run ./hack/benchratios

.PHONY: fuzz
fuzz: ## Fuzz the webhook signature parser and event decoder for 2 minutes each.
	go test -run '^$$' -fuzz FuzzParseSignatureHeader -fuzztime 2m ./webhookserver/
	go test -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 2m ./webhookserver/

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	go build -o bin/manager ./cmd/manager

.PHONY: run
run: manifests generate ## Run the manager against the cluster in KUBECONFIG and Stripe with STRIPE_API_KEY.
	go run ./cmd/manager

.PHONY: dev
dev: envtest ## Everything local: API server, test-mode Stripe, manager, webhook server, samples (options: DEV_ARGS="--webhook-addr=:18090 --metrics-addr=0 ...", see go run ./cmd/dev -h).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh $(ENVTEST_K8S_VERSION) $(SETUP_ENVTEST))" \
	go run ./cmd/dev $(DEV_ARGS)

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: manifests ## Install CRDs into the cluster in KUBECONFIG.
	kubectl apply -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the operator into the cluster in KUBECONFIG.
	kubectl apply -k config/default

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(LOCALBIN) ## Install controller-gen into ./bin.
	@test -x $(CONTROLLER_GEN) && $(CONTROLLER_GEN) --version 2>/dev/null | grep -q $(CONTROLLER_TOOLS_VERSION) || \
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: setup-envtest
setup-envtest: $(LOCALBIN) ## Install setup-envtest into ./bin.
	@test -x $(SETUP_ENVTEST) || GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-runtime/tools/setup-envtest@$(ENVTEST_VERSION)

.PHONY: stripe-mock
stripe-mock: $(LOCALBIN) ## Install Stripe's stripe-mock into ./bin.
	@test -x $(STRIPE_MOCK) || GOBIN=$(LOCALBIN) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
