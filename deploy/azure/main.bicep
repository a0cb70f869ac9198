// Event Grid delivery of ACS recording events to callvault's webhook.
//
// Creates an Event Grid system topic on an existing Azure Communication Services
// resource and a webhook subscription for Microsoft.Communication.RecordingFileStatusUpdated.
// callvault must already be reachable at webhookUrl: Event Grid validates the endpoint
// (the SubscriptionValidation handshake) while this deploys.
//
//   az deployment group create -g RG -f deploy/azure/main.bicep \
//     -p acsName=contoso-acs webhookUrl=https://callvault.example.com/api/events \
//     -p webhookSecret="$CALLVAULT_INGEST_SECRET"
//
// With Microsoft Entra ID (callvault's ingest.entra.tenant_id and ingest.entra.audience), add
//     -p entraTenantId=TENANT-GUID entraAudience=api://callvault-webhook
// and give webhookSecret '' to rely on the token alone. The Event Grid service principal must
// hold the webhook app's AzureEventGridSecureWebhookSubscriber role (docs/security.md).

targetScope = 'resourceGroup'

@description('Name of the existing Azure Communication Services resource, in this resource group.')
param acsName string

@description('Public HTTPS URL of callvault\'s webhook, without a query string, e.g. https://callvault.example.com/api/events.')
param webhookUrl string

@secure()
@description('callvault\'s ingest.secret; sent as ?code=SECRET on every delivery. Empty with Entra ID alone.')
param webhookSecret string

@description('Microsoft Entra tenant id (callvault\'s ingest.entra.tenant_id); empty: no bearer token.')
param entraTenantId string = ''

@description('The webhook app\'s client id or App ID URI (callvault\'s ingest.entra.audience).')
param entraAudience string = ''

@description('Name of the Event Grid system topic (one per ACS resource; reuse an existing one by its name).')
param systemTopicName string = '${acsName}-events'

@description('Name of the event subscription.')
param subscriptionName string = 'callvault-recordings'

@description('Events per webhook call. With preferredBatchSizeInKilobytes this keeps a delivery well under callvault\'s server.max_body_bytes (4 MiB).')
@minValue(1)
@maxValue(5000)
param maxEventsPerBatch int = 10

@description('Preferred batch size in KiB (Event Grid allows at most 1024; one event is at most 1 MB), so a batch stays below 4 MiB.')
@minValue(1)
@maxValue(1024)
param preferredBatchSizeInKilobytes int = 1024

@description('Resource id of a storage account for events Event Grid gives up on; empty for no dead-lettering.')
param deadLetterStorageAccountId string = ''

@description('Blob container for dead-lettered events (must exist in that account).')
param deadLetterContainerName string = 'callvault-deadletter'

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: acsName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  // System topics of ACS resources are global.
  location: 'global'
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: empty(webhookSecret) ? webhookUrl : '${webhookUrl}?code=${uriComponent(webhookSecret)}'
        // Event Grid then sends `Authorization: Bearer <token>` for this app on every delivery.
        azureActiveDirectoryTenantId: empty(entraTenantId) ? null : entraTenantId
        azureActiveDirectoryApplicationIdOrUri: empty(entraTenantId) ? null : entraAudience
        maxEventsPerBatch: maxEventsPerBatch
        preferredBatchSizeInKilobytes: preferredBatchSizeInKilobytes
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Communication.RecordingFileStatusUpdated'
      ]
    }
    // Retry for a day, as long as ACS keeps a recording (24 h): a delivery that gets through
    // late may still leave time to download, and callvault marks it expired otherwise.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterDestination: empty(deadLetterStorageAccountId) ? null : {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: deadLetterStorageAccountId
        blobContainerName: deadLetterContainerName
      }
    }
  }
}

@description('Resource id of the system topic.')
output systemTopicId string = systemTopic.id

@description('Name of the event subscription.')
output subscriptionName string = subscription.name
