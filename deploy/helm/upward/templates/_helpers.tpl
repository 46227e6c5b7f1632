{{/* Names, labels and the per-service values every template shares. */}}

{{- define "upward.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "upward.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: upward
{{- end -}}

{{/* Selector labels of one component: include with (dict "root" $ "component" "matching"). */}}
{{- define "upward.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "upward.componentLabels" -}}
{{ include "upward.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "upward.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "upward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "upward.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The values of service .name: serviceDefaults deep-merged with services.<name>. */}}
{{- define "upward.service" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- mustMergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $own) | toYaml -}}
{{- end -}}

{{/* Names of the enabled services, sorted, as a YAML list. */}}
{{- define "upward.enabledServices" -}}
{{- $names := list -}}
{{- range $name, $own := .Values.services -}}
{{- if (($own | default dict).enabled | default false) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- sortAlpha $names | toYaml -}}
{{- end -}}

{{/* Most replicas that can do work: one per partition. */}}
{{- define "upward.maxReplicas" -}}
{{- min .svc.autoscaling.maxReplicas .root.Values.topics.partitions -}}
{{- end -}}

{{/* The consumer group of a service, as servicekit/settings.py computes it. */}}
{{- define "upward.consumerGroup" -}}
{{- .svc.settings.consumer_group | default (printf "%supward-%s" .root.Values.topicPrefix .name) -}}
{{- end -}}

{{- define "upward.secretName" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "upward.fullname" .)) -}}
{{- end -}}

{{/* Settings every service and the prepare Job read: a YAML map of env name -> value. */}}
{{- define "upward.sharedEnv" -}}
UPWARD_KAFKA_BOOTSTRAP_SERVERS: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
UPWARD_TOPIC_PREFIX: {{ .Values.topicPrefix | quote }}
UPWARD_REGION: {{ .Values.region | quote }}
UPWARD_LOG_LEVEL: {{ .Values.logLevel | quote }}
UPWARD_REGIONS: {{ join "," .Values.regions | quote }}
UPWARD_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.security.protocol | quote }}
UPWARD_KAFKA_SASL_MECHANISM: {{ .Values.kafka.security.saslMechanism | quote }}
UPWARD_KAFKA_SSL_CHECK_HOSTNAME: {{ .Values.kafka.security.sslCheckHostname | toString | quote }}
{{- if .Values.kafka.security.caSecret }}
UPWARD_KAFKA_SSL_CAFILE: "/etc/upward/kafka-ca/ca.crt"
{{- end }}
{{- end -}}

{{/* How the services verify bearer tokens (docs/security.md). */}}
{{- define "upward.authEnv" -}}
UPWARD_AUTH_AUDIENCE: {{ .Values.auth.audience | quote }}
{{- with .Values.auth.issuer }}
UPWARD_AUTH_ISSUER: {{ . | quote }}
{{- end }}
{{- with .Values.auth.jwksUrl }}
UPWARD_AUTH_JWKS_URL: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The HS256 signing secret from auth.existingSecret, unless a JWKS URL is used. */}}
{{- define "upward.authSecretEnv" -}}
{{- if and .Values.auth.existingSecret (not .Values.auth.jwksUrl) }}
- name: UPWARD_AUTH_JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .Values.auth.existingSecret }}, key: {{ .Values.auth.secretKey }}}
{{- end }}
{{- end -}}

{{/* The environment of one service: shared settings, its HTTP address, its own settings. */}}
{{- define "upward.serviceEnv" -}}
{{- $prefix := printf "UPWARD_%s_" (upper .name) -}}
{{ include "upward.sharedEnv" .root }}
UPWARD_ENVIRONMENT: {{ .root.Values.environment | quote }}
{{ include "upward.authEnv" .root }}
{{ $prefix }}HTTP_HOST: "0.0.0.0"
{{ $prefix }}HTTP_PORT: {{ .root.Values.http.port | quote }}
{{- range $field, $value := .svc.settings }}
{{ $prefix }}{{ upper $field }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The database URL of a service, from the Secret: (dict "root" $ "name" "matching" "secret" NAME). */}}
{{- define "upward.databaseEnv" -}}
- name: {{ printf "UPWARD_%s_DATABASE_URL" (upper .name) }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ required (printf "database.secretKeys.%s is required" .name) (index .root.Values.database.secretKeys .name) }}
{{- end -}}

{{/* SASL credentials from kafka.security.credentialsSecret: (dict "root" $ "env" "UPWARD_MATCHING_KAFKA_SASL_" "key" "matching"). */}}
{{- define "upward.kafkaCredentialsEnv" -}}
{{- with .root.Values.kafka.security.credentialsSecret }}
- name: {{ $.env }}USERNAME
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: {{ $.key }}-username}
- name: {{ $.env }}PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: {{ $.key }}-password}
{{- end }}
{{- end -}}

{{/* The Kafka CA volume mount and volume, when kafka.security.caSecret is set. */}}
{{- define "upward.kafkaCaMount" -}}
{{- if .Values.kafka.security.caSecret }}
- name: kafka-ca
  mountPath: /etc/upward/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "upward.kafkaCaVolume" -}}
{{- with .Values.kafka.security.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "upward.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rules to DNS, Kafka and PostgreSQL (services and the prepare Job). */}}
{{- define "upward.storageEgress" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
- ports:
    {{- range .Values.kafka.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .Values.networkPolicy.kafkaPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    - {port: {{ .Values.database.port }}, protocol: TCP}
  {{- with .Values.networkPolicy.databasePeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
