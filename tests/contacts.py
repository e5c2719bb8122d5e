"""The contact every CRM fake knows (tests and benchmarks): James May, as SwitchTransact's
``GET /calls/record`` gives it and as the lookup answers it."""

#: SwitchTransact's record (``contact`` of ``GET /calls/record``).
JAMES = {
    "id": "2916509f-f188-42d8-ab0e-a27bcb20d70d",
    "firstname": "James",
    "lastname": "May",
    "customer_number": "3008821",
    "company": "My Company name",
    "businessphone": None,
    "businessphone2": None,
    "mobilephone": "0721234567",
    "email": "james@may.com",
    "entity_type": "Account",
}
#: The lookup's ``contact`` for that record.
JAMES_CONTACT = {
    "id": "2916509f-f188-42d8-ab0e-a27bcb20d70d",
    "name": "James May",
    "first_name": "James",
    "last_name": "May",
    "company": "My Company name",
    "customer_number": "3008821",
    "email": "james@may.com",
    "mobile_phone": "+27721234567",
    "business_phone": None,
    "business_phone2": None,
    "entity_type": "Account",
}
