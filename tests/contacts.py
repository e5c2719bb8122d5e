"""The contact every CRM fake knows (tests and benchmarks): James May, as SwitchTransact's
``GET /calls/record`` gives it and as the lookup answers it, and the log of a call of his."""

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
#: The fields of a call log for a call from James (found in the CRM).
FROM_JAMES = {
    "CallType": "Inbound",
    "CallDirection": "Inbound",
    "Number": "+27721234567",
    "Name": "James May",
    "EntityId": JAMES["id"],
    "EntityType": "Account",
}
#: The call log (``POST /calls/log``) of his inbound call that agent 6001 answered, as the
#: journal's tests report it (``journal_fakes.call_end``: 2 min 5 s of talk, 3 min 10 s in all).
JAMES_CALL_LOG = {
    **FROM_JAMES,
    "AgentFirstName": "Ayanda",
    "AgentLastName": "Dlamini",
    "AgentEmail": "ayanda@example.com",
    "Duration": "00:02:05",
    "DurationTimespan": "00:03:10",
    "DateTime": "05-07-25 10:12:12",
    "CallStartTimeLocal": "10:12:12",
    "CallEndTimeLocal": "10:15:22",
}
