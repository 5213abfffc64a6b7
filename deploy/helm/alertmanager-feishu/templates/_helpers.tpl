{{/* The release's name, with the chart's unless it has it already. */}}
{{- define "amfeishu.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "amfeishu.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "amfeishu.labels" -}}
{{ include "amfeishu.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "amfeishu.redisName" -}}
{{- printf "%s-redis" (include "amfeishu.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "amfeishu.redisSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "amfeishu.redisDeployed" -}}
{{- if and (eq .Values.state.backend "redis") .Values.state.redis.deploy -}}true{{- end -}}
{{- end -}}

{{/*
routing.yaml: .Values.config with the state section the chart's values
decide. The secret files sit where the Deployment mounts the Secret.
*/}}
{{- define "amfeishu.routing" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $state := deepCopy (get $cfg "state" | default dict) -}}
{{- $_ := set $state "backend" .Values.state.backend -}}
{{- if eq .Values.state.backend "file" -}}
{{- $_ := set $state "path" "/data/state.db" -}}
{{- else if eq .Values.state.backend "redis" -}}
{{- $addresses := .Values.state.redis.addresses -}}
{{- if .Values.state.redis.deploy -}}
{{- $addresses = list (printf "%s:6379" (include "amfeishu.redisName" .)) -}}
{{- end -}}
{{- if not $addresses -}}
{{- fail "state.redis.addresses: name your Redis, or set state.redis.deploy" -}}
{{- end -}}
{{- $redis := deepCopy (get $state "redis" | default dict) -}}
{{- $_ := set $redis "addresses" $addresses -}}
{{- $_ := set $redis "password_file" "/etc/alertmanager-feishu/secret/redis_password" -}}
{{- $_ := set $redis "key_prefix" .Values.state.redis.keyPrefix -}}
{{- $_ := set $state "redis" $redis -}}
{{- else -}}
{{- fail (printf "state.backend: %q is neither file nor redis" .Values.state.backend) -}}
{{- end -}}
{{- $_ := set $cfg "state" $state -}}
{{- toYaml $cfg -}}
{{- end -}}
