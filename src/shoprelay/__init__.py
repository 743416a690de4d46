"""shoprelay: Shopify and ShipStation data into Klaviyo."""
