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

{{/* The controller's and callback's containers end alike: probes on the named http port,
resources, security context, a writable /tmp. Args: root, c (the component's values). */}}
{{- define "kinfer.containerCommon" -}}
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: 5
startupProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: 2
  failureThreshold: 60
resources:
  {{- toYaml .c.resources | nindent 2 }}
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
volumeMounts:
  - { name: tmp, mountPath: /tmp }
{{- end -}}

{{/* ...and their Pods likewise: the /tmp volume and the component's placement. Args: c. */}}
{{- define "kinfer.podCommon" -}}
volumes:
  - name: tmp
    emptyDir: {}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The Service in front of a component. Args: root, component, c. */}}
{{- define "kinfer.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "kinfer.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "kinfer.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  type: {{ .c.service.type }}
  selector:
    {{- include "kinfer.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    - name: http
      port: {{ .c.service.port }}
      targetPort: http
      {{- if and (eq .c.service.type "NodePort") .c.service.nodePort }}
      nodePort: {{ .c.service.nodePort }}
      {{- end }}
{{- end -}}

{{- define "kinfer.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "kinfer.fullname" .)) .Values.auth.adminToken.existingSecret -}}
{{- end -}}

{{- define "kinfer.namespaceGroups" -}}
{{- $pairs := list -}}
{{- range $group, $ns := . -}}{{- $pairs = append $pairs (printf "%s=%s" $group $ns) -}}{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
