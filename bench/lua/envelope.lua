--- The fixed answer of the benchmark's server (bench/server.lua) to every
-- PATCH /v1/contacts/<id>: the seed page's "Envoke Contact Object", compact,
-- in a write envelope (792 bytes).
return '{"success":true,"result_text":"Updated","result_data":{'
  .. '"id":"1234","external_id":"1234","remote_id":"","first_name":"John","last_name":"Johnson",'
  .. '"title":"Leading Leader","email":"new-contact@api-testing.com","company":"Envoke",'
  .. '"phone":"555-1234","address_1":"555 Brant Street","address_2":"","city":"Toronto",'
  .. '"country":"CA","province":"ON","postal_code":"L1V 3X5","website":"","language":"en",'
  .. '"feedback":"","consent_status":"Express",'
  .. '"consent_description":"Express consent given on website homepage form.",'
  .. '"consent_effective_date":"2017-10-27T18:19:57+00:00","consent_expiry":"",'
  .. '"consent_force_downgrade":false,"custom_fields":{"custom_field_name1":"Field Value 1"},'
  .. '"interests":["Business Products","International","Consumer"],'
  .. '"autoresponders":["Marketing Sequence 1","Whitepaper Download"]}}'
