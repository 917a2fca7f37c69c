-- Generated from config/argocd/health.lua.tmpl; edit that file, not this one.
-- Argo CD health check for a stripe-operator resource. It follows the
-- operator's kstatus conditions: Healthy only when Ready=True for the
-- current generation; Degraded when Stalled=True (a person has to act) or a
-- payment failed; Progressing otherwise, including before the operator has
-- observed the resource at all. Uses no standard library beyond the base
-- functions (argocd-cm scripts run without the string library).
local hs = {}

local function condition(condType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == condType then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "The resource is being deleted; the operator applies its deletion policy in Stripe."
  return hs
end

local generation = obj.metadata.generation or 0
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec."
  return hs
end

local stalled = condition("Stalled")
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

local paymentFailed = condition("PaymentFailed")
if isTrue(paymentFailed) then
  hs.status = "Degraded"
  hs.message = paymentFailed.message
  return hs
end

local reconciling = condition("Reconciling")
if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = reconciling.message
  return hs
end

local ready = condition("Ready")
if isTrue(ready) and ready.observedGeneration == generation then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.status = "Progressing"
  hs.message = ready.message
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the operator to report Ready."
return hs
