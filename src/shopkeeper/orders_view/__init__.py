"""What staff and customers see of an order: its detail, list and history across payments,
refunds and disputes. Above those features in the layers (it reads them all), below the pages
and the API that show it; lower layers find orders through `orders.lookups`."""
