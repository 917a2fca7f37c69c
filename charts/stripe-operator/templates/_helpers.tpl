{{/* Chart name. */}}
{{- define "stripe-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Instance name: the prefix of every resource name. */}}
{{- define "stripe-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stripe-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "stripe-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "stripe-operator.managerSelector" -}}
app.kubernetes.io/name: {{ include "stripe-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "stripe-operator.webhookSelector" -}}
app.kubernetes.io/name: {{ include "stripe-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook-server
{{- end }}

{{- define "stripe-operator.managerSA" -}}
{{ include "stripe-operator.fullname" . }}-controller-manager
{{- end }}

{{- define "stripe-operator.webhookSA" -}}
{{ include "stripe-operator.fullname" . }}-webhook-server
{{- end }}

{{- define "stripe-operator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The restricted Pod Security Standard, for every container. */}}
{{- define "stripe-operator.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Flags shared by the manager and the webhook server. */}}
{{- define "stripe-operator.commonArgs" -}}
- --credentials-secret-name={{ .Values.credentials.secretName }}
- --webhook-secret-name={{ .Values.credentials.webhookSecretName }}
- --zap-log-level={{ .Values.manager.logLevel }}
{{- end }}
