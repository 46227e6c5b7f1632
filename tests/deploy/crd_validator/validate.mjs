// Validates KEDA and prometheus-operator objects against the JSON schemas generated from their
// CRDs (the @kubernetes-models packages pinned in package.json).
// Input on stdin: a JSON array of objects. Output on stdout: a JSON array with, per object,
// null when it is valid or the list of schema errors.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const MODELS = new Map(
  [ScaledObject, TriggerAuthentication, ServiceMonitor, PrometheusRule].map((model) => [
    `${model.apiVersion}/${model.kind}`,
    model,
  ]),
);

function check(object) {
  const model = MODELS.get(`${object.apiVersion}/${object.kind}`);
  if (!model) return [`no CRD schema for ${object.apiVersion}/${object.kind}`];
  try {
    new model(object).validate();
    return null;
  } catch (error) {
    return (error.errors ?? [error]).map((e) => `${e.instancePath ?? ""} ${e.message}`.trim());
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
process.stdout.write(JSON.stringify(JSON.parse(input).map(check)));
