// The InferenceJob CustomResourceDefinition, built from the zod spec and status
// (inference-job.ts). zod writes OpenAPI 3.0; this turns it into a Kubernetes structural schema:
// objects kinfer passes through keep unknown fields, quantities are int-or-string, and the
// strictness zod expresses as additionalProperties:false is left to the API server's pruning
// and kubectl's field validation. `npm run generate` writes the YAML files from it.
import { z } from 'zod';
import { GROUP, InferenceJobSpec, InferenceJobStatus, KIND, PLURAL, PRINTER_COLUMNS, VERSION } from './inference-job.ts';

type Json = { [key: string]: unknown };

const SAFE_INT = 9007199254740991;

function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== 'object') return node;
  const o = node as Json;
  const out: Json = {};
  for (const [key, value] of Object.entries(o)) {
    if (key === '$schema' || key === 'id') continue;
    if (key === 'additionalProperties' && (value === false || (o.properties !== undefined && Object.keys(value as Json).length === 0))) continue;
    if ((key === 'minimum' && value === -SAFE_INT) || (key === 'maximum' && value === SAFE_INT)) continue;
    out[key] = structural(value);
  }
  // z.looseObject({}): any fields, kept as they are.
  if (o.type === 'object' && o.properties !== undefined && Object.keys(o.properties as Json).length === 0 && o.additionalProperties !== undefined) {
    delete out.properties;
    out['x-kubernetes-preserve-unknown-fields'] = true;
  }
  // int-or-string: the branches may only say their type.
  if (o['x-kubernetes-int-or-string'] && Array.isArray(o.anyOf)) out.anyOf = (o.anyOf as Json[]).map((b) => ({ type: b.type }));
  return out;
}

export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Json {
  return structural(z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'throw' })) as Json;
}

export function inferenceJobCrd(): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: KIND.toLowerCase(), shortNames: ['ij'], categories: ['kinfer'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'One test run (labeled dataset -> metrics) or inference job (images -> predictions), run by kinfer as a batch/v1 Job of its runner image. Status is written by the kinfer controller only.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openApiSchema(InferenceJobSpec, 'input'),
                status: openApiSchema(InferenceJobStatus, 'output'),
              },
            },
          },
        },
      ],
    },
  };
}
