{{- define "kinfer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kinfer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kinfer.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "kinfer.metaLabels" . }}
{{- end -}}

{{/* Labels besides the selector's: pod templates add these to kinfer.selectorLabels. */}}
{{- define "kinfer.metaLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kinfer
{{- end -}}

{{/* Selector labels of one component: controller or callback. */}}
{{- define "kinfer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kinfer.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kinfer.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kinfer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-controller" (include "kinfer.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kinfer.databaseSecret" -}}
{{- default (printf "%s-database" (include "kinfer.fullname" .)) .Values.database.existingSecret -}}
{{- end -}}

{{- define "kinfer.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{- define "kinfer.s3Secret" -}}
{{- default (printf "%s-object-storage" (include "kinfer.fullname" .)) .Values.objectStorage.existingSecret -}}
{{- end -}}

{{- define "kinfer.s3Credentials" -}}
{{- or .Values.objectStorage.existingSecret .Values.objectStorage.accessKeyId -}}
{{- end -}}

{{/* The signing key Secret (controller) and the verification key Secret (callback). */}}
{{- define "kinfer.signingSecret" -}}
{{- default (printf "%s-token-signing" (include "kinfer.fullname" .)) .Values.tokenSigning.existingSecret -}}
{{- end -}}
{{- define "kinfer.verifySecret" -}}
{{- default (printf "%s-token-verify" (include "kinfer.fullname" .)) .Values.tokenSigning.existingSecret -}}
{{- end -}}

{{- define "kinfer.callbackUrl" -}}
{{- default (printf "http://%s-callback.%s.svc:%v" (include "kinfer.fullname" .) .Release.Namespace .Values.callback.service.port) .Values.callback.url -}}
{{- end -}}

{{/* Runner Pod defaults as the controller reads them (KINFER_RUNNER_POD_DEFAULTS). */}}
{{- define "kinfer.runnerPodDefaults" -}}
{{- $r := .Values.runner -}}
{{- $d := dict "gpu" $r.gpu "imagePullPolicy" .Values.image.pullPolicy -}}
{{- with $r.resources }}{{ $_ := set $d "resources" . }}{{ end -}}
{{- with $r.nodeSelector }}{{ $_ := set $d "nodeSelector" . }}{{ end -}}
{{- with $r.tolerations }}{{ $_ := set $d "tolerations" . }}{{ end -}}
{{- with $r.podLabels }}{{ $_ := set $d "podLabels" . }}{{ end -}}
{{- with .Values.imagePullSecrets }}{{ $_ := set $d "imagePullSecrets" . }}{{ end -}}
{{- toJson $d -}}
{{- end -}}
